import { describe, expect, it } from 'vitest';
import { Admin, Producer, TransactionProducer } from '../../src/index.js';
import type { GroupStatus, ReceivedMessage } from '../../src/index.js';
import { receivedFromRecords, toReceivedMessage } from '../../src/client/message-convert.js';
import { Command, PROTOCOL_VERSION } from '../../src/protocol/commands.js';
import type { HelloResponse, PullResponse, RawPullResponse } from '../../src/protocol/commands.js';
import { splitBodies } from '../../src/protocol/message-codec.js';
import { sharedBroker, uniqueName } from '../helpers/broker-process.js';
import type { Frame } from '../../src/protocol/frame.js';
import { frame, rawConnection } from '../helpers/raw-connection.js';

const broker = sharedBroker();

/** A bare connection that has said HELLO and joined a new group on `topic`. */
async function joined(topic: string): Promise<{ group: string; request: (code: number, d: unknown) => Promise<Frame>; close: () => void }> {
  const c = await rawConnection(broker().port);
  const group = uniqueName('g');
  let id = 0;
  // One request at a time: the broker serves a connection's requests concurrently.
  const request = async (code: number, d: unknown): Promise<Frame> => {
    c.socket.write(frame(code, ++id, d));
    const f = await c.next();
    expect(f.header.c).toBe(code);
    return f;
  };
  const hello = await request(Command.HELLO, { version: PROTOCOL_VERSION, clientId: 'consume-forms' });
  // What the SDK looks for before it uses the newer forms.
  expect((hello.header.d as HelloResponse).features).toEqual(expect.arrayContaining(['raw-pull', 'ack-by-queue']));
  expect((await request(Command.JOIN_GROUP, { group, subscriptions: { [topic]: '*' } })).header.e).toBeUndefined();
  return { group, request, close: () => c.socket.destroy() };
}

async function pullOnce(topic: string, raw: boolean): Promise<{ payload: unknown; body: Buffer }> {
  const c = await joined(topic);
  try {
    const f = await c.request(Command.PULL, { group: c.group, max: 10, waitMs: 2_000, ...(raw ? { raw: true } : {}) });
    expect(f.header.e).toBeUndefined();
    return { payload: f.header.d, body: f.body };
  } finally {
    c.close();
  }
}

async function fill(topic: string, bodies: string[]): Promise<void> {
  const admin = new Admin({ endpoints: broker().endpoints });
  const producer = new Producer({ endpoints: broker().endpoints });
  try {
    await admin.createTopic(topic, { queues: 1 });
    for (const body of bodies) await producer.send({ topic, body });
  } finally {
    await Promise.all([admin.shutdown(), producer.shutdown()]);
  }
}

describe('PULL and ACK forms', () => {
  it('records as stored (raw) and decoded messages show the same messages, a committed half at its queue offset', async () => {
    const topic = uniqueName('forms');
    const admin = new Admin({ endpoints: broker().endpoints });
    const producer = new Producer({ endpoints: broker().endpoints });
    const tx = new TransactionProducer({ endpoints: broker().endpoints, group: uniqueName('tx'), checker: async () => 'COMMIT' });
    try {
      await admin.createTopic(topic, { queues: 1 });
      await producer.send({ topic, body: 'plain', tag: 'a', keys: ['k1', 'k2'], properties: { p: 'v' } });
      await producer.send({ topic, body: Buffer.alloc(0) });
      // A released half: its record says queue offset -1, the queue says 2.
      await tx.sendInTransaction({ topic, body: 'half', tag: 'b' }, async () => 'COMMIT');
    } finally {
      await Promise.all([admin.shutdown(), producer.shutdown(), tx.shutdown()]);
    }

    const decoded = await pullOnce(topic, false);
    const wires = (decoded.payload as PullResponse).messages;
    const fromMessages: ReceivedMessage[] = wires.map((w, i) => toReceivedMessage(w, splitBodies(decoded.body, wires)[i]!));
    const records = await pullOnce(topic, true);
    expect(Object.keys(records.payload as object).sort()).toEqual(['o', 'r']);
    const fromRecords = receivedFromRecords(records.payload as RawPullResponse, records.body);

    expect(fromRecords).toEqual(fromMessages);
    expect(fromRecords.map((m) => [m.queueOffset, m.body.toString(), m.tag])).toEqual([
      [0, 'plain', 'a'],
      [1, '', undefined],
      [2, 'half', 'b'],
    ]);
    expect(fromRecords[0]).toMatchObject({ keys: ['k1', 'k2'], properties: { p: 'v' } });
  });

  it('ACK takes per-message items and per-queue runs; a bad entry fails the whole request', async () => {
    const topic = uniqueName('acks');
    await fill(topic, ['m0', 'm1', 'm2', 'm3']);
    const c = await joined(topic);
    try {
      const pulled = await c.request(Command.PULL, { group: c.group, max: 10, waitMs: 2_000, raw: true });
      expect((pulled.header.d as RawPullResponse).o).toEqual([0, 1, 2, 3]);
      const lag = async (): Promise<number> => ((await c.request(Command.GROUP_STATUS, { group: c.group })).header.d as GroupStatus).totalLag;

      const bad = await c.request(Command.ACK, { group: c.group, byQueue: [[topic, 0, [2]], [topic, 0, [3, 'x']]] });
      expect(bad.header.e).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/byQueue\[1\] queueOffset/) });
      expect(await lag()).toBe(4);

      expect((await c.request(Command.ACK, { group: c.group, items: [[topic, 0, 0]] })).header.e).toBeUndefined();
      expect(await lag()).toBe(3);
      expect((await c.request(Command.ACK, { group: c.group, byQueue: [[topic, 0, [2, 1, 3]]] })).header.e).toBeUndefined();
      expect(await lag()).toBe(0);
    } finally {
      c.close();
    }
  });
});
