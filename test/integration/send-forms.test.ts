import { describe, expect, it } from 'vitest';
import { Admin, Producer, SimpleConsumer } from '../../src/index.js';
import { decodeRecord, encodeUnstampedRecords } from '../../src/common/record-codec.js';
import { RecordType, type RecordInput } from '../../src/common/record.js';
import { Command, PROTOCOL_VERSION } from '../../src/protocol/commands.js';
import type { HelloResponse, RawPullResponse, SendResponse } from '../../src/protocol/commands.js';
import { packBodies } from '../../src/protocol/message-codec.js';
import type { Frame } from '../../src/protocol/frame.js';
import { sharedBroker, uniqueName } from '../helpers/broker-process.js';
import { frame, rawConnection } from '../helpers/raw-connection.js';

/**
 * SEND's two forms against a real broker: `messages` (a msgpack entry per message plus bodies) and
 * `records` (RECORD_SEND: commit-log records the broker only stamps). Both must store the same
 * thing, and a bad record must fail its request alone.
 */
const broker = sharedBroker();

type Request = (code: number, d: unknown, body?: Buffer) => Promise<Frame>;

async function connect(): Promise<{ request: Request; hello: HelloResponse; close: () => void }> {
  const c = await rawConnection(broker().port);
  let id = 0;
  // One request at a time: the broker serves a connection's requests concurrently.
  const request: Request = async (code, d, body) => {
    c.socket.write(frame(code, ++id, d, body));
    const f = await c.next();
    expect(f.header.i).toBe(id);
    return f;
  };
  const hello = (await request(Command.HELLO, { version: PROTOCOL_VERSION, clientId: 'send-forms' })).header.d as HelloResponse;
  return { request, hello, close: () => c.socket.destroy() };
}

function input(topic: string, msgId: string, overrides: Partial<RecordInput> = {}): RecordInput {
  return { type: RecordType.NORMAL, topic, queueId: 0, msgId, keys: [], properties: {}, body: Buffer.from(msgId), bornTimestamp: 1_700_000_000_000, reconsumeTimes: 0, ...overrides };
}

/** The records of queue 0 of `topic`, decoded, via a raw PULL of a new group. */
async function stored(request: Request, topic: string): Promise<ReturnType<typeof decodeRecord>[]> {
  const group = uniqueName('g');
  expect((await request(Command.JOIN_GROUP, { group, subscriptions: { [topic]: '*' } })).header.e).toBeUndefined();
  const f = await request(Command.PULL, { group, max: 100, waitMs: 200, raw: true });
  expect(f.header.e).toBeUndefined();
  const { o } = f.header.d as RawPullResponse;
  const out = [];
  let at = 0;
  for (let i = 0; i < o.length; i++) {
    const r = decodeRecord(f.body, 0, at); // checks the crc the broker stamped
    out.push(r);
    at += r.size;
  }
  return out;
}

describe('SEND forms', () => {
  it('stores a record sent as bytes exactly as the same message sent as an entry', async () => {
    const c = await connect();
    try {
      expect(c.hello.features).toContain('record-send');
      const topic = uniqueName('forms');
      expect((await c.request(Command.CREATE_TOPIC, { name: topic, queues: 1 })).header.e).toBeUndefined();
      const fields = { tag: 'TagA', keys: ['order-1', 'user-ü'], properties: { 'x-ünï': 'çödé 🚀' } };
      const asEntry = await c.request(
        Command.SEND,
        { messages: [{ t: topic, id: 'entry-0001', n: 9, g: fields.tag, k: fields.keys, p: fields.properties, b: 1_700_000_000_000 }], cr: true },
        packBodies([Buffer.from('same-body')]),
      );
      expect(asEntry.header.e).toBeUndefined();
      const asRecord = await c.request(Command.SEND, { records: 1, cr: true }, encodeUnstampedRecords([input(topic, 'record-001', { ...fields, body: Buffer.from('same-body') })]));
      expect(asRecord.header.e).toBeUndefined();
      expect(asRecord.header.d as SendResponse).toEqual({ q: [0], o: [1] });

      const [entry, record] = await stored(c.request, topic);
      const { msgId: _a, physicalOffset: _b, storeTimestamp: _c, queueOffset: _d, ...entryRest } = entry!;
      const { msgId, physicalOffset: _f, storeTimestamp: _g, queueOffset, ...recordRest } = record!;
      expect(msgId).toBe('record-001');
      expect(queueOffset).toBe(1);
      expect(recordRest).toEqual(entryRest);
      expect(recordRest).toMatchObject({ topic, tag: 'TagA', keys: fields.keys, properties: fields.properties, reconsumeTimes: 0 });
    } finally {
      c.close();
    }
  });

  it('refuses a bad record with INVALID_ARGUMENT or MESSAGE_TOO_LARGE, stores none of its request, and keeps serving', async () => {
    const c = await connect();
    try {
      const topic = uniqueName('bad-records');
      expect((await c.request(Command.CREATE_TOPIC, { name: topic, queues: 1 })).header.e).toBeUndefined();
      const good = encodeUnstampedRecords([input(topic, 'good-1')]);
      const truncated = encodeUnstampedRecords([input(topic, 'cut')]).subarray(0, 30);
      const badSize = Buffer.from(encodeUnstampedRecords([input(topic, 'size')]));
      badSize.writeUInt32LE(badSize.length + 5, 0);
      const cases: [string, unknown, Buffer, string][] = [
        ['count missing from the body', { records: 2 }, good, 'INVALID_ARGUMENT'],
        ['bytes after the records', { records: 1 }, Buffer.concat([good, Buffer.alloc(3)]), 'INVALID_ARGUMENT'],
        ['count not a number', { records: 'one' }, good, 'INVALID_ARGUMENT'],
        ['truncated record', { records: 2 }, Buffer.concat([good, truncated]), 'INVALID_ARGUMENT'],
        ['size past the body', { records: 1 }, badSize, 'INVALID_ARGUMENT'],
        ['id with a space', { records: 2 }, encodeUnstampedRecords([input(topic, 'good-2'), input(topic, 'has space')]), 'INVALID_ARGUMENT'],
        ['reserved property', { records: 1 }, encodeUnstampedRecords([input(topic, 'reserved', { properties: { __DELIVER_AT: '1' } })]), 'INVALID_ARGUMENT'],
        ['bad topic name', { records: 1 }, encodeUnstampedRecords([input('no/slashes', 'topic')]), 'INVALID_ARGUMENT'],
        ['body over the limit', { records: 1 }, encodeUnstampedRecords([input(topic, 'big', { body: Buffer.alloc(4 * 1024 * 1024 + 1) })]), 'MESSAGE_TOO_LARGE'],
      ];
      for (const [what, d, body, code] of cases) {
        const f = await c.request(Command.SEND, d, body);
        expect(f.header.e?.code, what).toBe(code);
        expect(f.header.e?.message.length, what).toBeGreaterThan(10);
      }
      // The connection still works, and only what was sent well is stored.
      expect((await c.request(Command.SEND, { records: 1, cr: true }, good)).header.e).toBeUndefined();
      expect((await stored(c.request, topic)).map((r) => r.msgId)).toEqual(['good-1']);
    } finally {
      c.close();
    }
  });

  it('the SDK sends records: fields, lookup by key and consumption are as with entries', async () => {
    const topic = uniqueName('sdk-records');
    const admin = new Admin({ endpoints: broker().endpoints });
    const producer = new Producer({ endpoints: broker().endpoints });
    const consumer = new SimpleConsumer({ endpoints: broker().endpoints, group: uniqueName('g'), subscriptions: { [topic]: '*' } });
    try {
      await admin.createTopic(topic, { queues: 2 });
      const sent = await Promise.all(
        Array.from({ length: 20 }, (_, i) => producer.send({ topic, body: `m${i}`, tag: i % 2 ? 'odd' : 'even', keys: [`order-${i}`], properties: { i: String(i) } })),
      );
      const found = await admin.findMessages(topic, 'order-7');
      expect(found.map((m) => m.msgId)).toEqual([sent[7]!.msgId]);
      await consumer.start();
      const got = [];
      for (let tries = 0; got.length < 20 && tries < 20; tries++) got.push(...(await consumer.receive(20, 500)));
      expect(got.map((m) => m.body.toString()).sort()).toEqual(sent.map((_, i) => `m${i}`).sort());
      for (const m of got) {
        const i = Number(m.body.toString().slice(1));
        expect(m).toMatchObject({ msgId: sent[i]!.msgId, tag: i % 2 ? 'odd' : 'even', keys: [`order-${i}`], properties: { i: String(i) } });
      }
    } finally {
      await consumer.shutdown();
      await producer.shutdown();
      await admin.shutdown();
    }
  });
});
