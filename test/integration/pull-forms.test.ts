import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin, Producer, TransactionProducer } from '../../src/index.js';
import type { ReceivedMessage } from '../../src/index.js';
import { receivedFromRecords, toReceivedMessage } from '../../src/client/message-convert.js';
import { Command, PROTOCOL_VERSION } from '../../src/protocol/commands.js';
import type { PullResponse, RawPullResponse } from '../../src/protocol/commands.js';
import { splitBodies } from '../../src/protocol/message-codec.js';
import { removeDir, startBrokerProcess, uniqueName } from '../helpers/broker-process.js';
import type { BrokerProcess } from '../helpers/broker-process.js';
import { frame, rawConnection } from '../helpers/raw-connection.js';

let broker: BrokerProcess;

beforeAll(async () => {
  broker = await startBrokerProcess();
});

afterAll(async () => {
  await broker?.stop();
  if (broker) await removeDir(broker.dataDir);
});

/** JOINs a new group over a bare connection and PULLs once, with or without `raw`. */
async function pullOnce(topic: string, raw: boolean): Promise<{ payload: unknown; body: Buffer }> {
  const c = await rawConnection(broker.port);
  try {
    const group = uniqueName('g');
    c.socket.write(frame(Command.HELLO, 1, { version: PROTOCOL_VERSION, clientId: 'pull-forms' }));
    c.socket.write(frame(Command.JOIN_GROUP, 2, { group, subscriptions: { [topic]: '*' } }));
    // The broker serves a connection's requests concurrently: the PULL must wait for the JOIN.
    const answered = async (code: number) => {
      const f = await c.next();
      expect([f.header.c, f.header.e]).toEqual([code, undefined]);
      return f;
    };
    await answered(Command.HELLO);
    await answered(Command.JOIN_GROUP);
    c.socket.write(frame(Command.PULL, 3, { group, max: 10, waitMs: 2_000, ...(raw ? { raw: true } : {}) }));
    const f = await answered(Command.PULL);
    return { payload: f.header.d, body: f.body };
  } finally {
    c.socket.destroy();
  }
}

describe('PULL answer forms', () => {
  it('records as stored (raw) and decoded messages show the same messages, a committed half at its queue offset', async () => {
    const topic = uniqueName('forms');
    const admin = new Admin({ endpoints: broker.endpoints });
    const producer = new Producer({ endpoints: broker.endpoints });
    const tx = new TransactionProducer({ endpoints: broker.endpoints, group: uniqueName('tx'), checker: async () => 'COMMIT' });
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
});
