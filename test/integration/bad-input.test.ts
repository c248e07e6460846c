import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Command, PROTOCOL_VERSION } from '../../src/protocol/commands.js';
import { Producer, SimpleConsumer } from '../../src/index.js';
import { removeDir, startBrokerProcess, uniqueName } from '../helpers/broker-process.js';
import type { BrokerProcess } from '../helpers/broker-process.js';
import { frame, rawConnection } from '../helpers/raw-connection.js';

let broker: BrokerProcess;
const raw = () => rawConnection(broker.port);
let producer: Producer;
const topic = uniqueName('healthy');

beforeAll(async () => {
  broker = await startBrokerProcess();
  producer = new Producer({ endpoints: broker.endpoints });
  await producer.start();
});

afterAll(async () => {
  await producer?.shutdown();
  await broker?.stop();
  if (broker) await removeDir(broker.dataDir);
});

const hello = frame(Command.HELLO, 1, { version: PROTOCOL_VERSION, clientId: 'raw-test' });

/** A normal client on its own connection still round-trips a message. */
async function healthy(): Promise<void> {
  const body = `ok-${Math.random()}`;
  await producer.send({ topic, body });
  const consumer = new SimpleConsumer({ endpoints: broker.endpoints, group: uniqueName('g'), subscriptions: { [topic]: '*' } });
  await consumer.start();
  try {
    const seen: string[] = [];
    const deadline = Date.now() + 10_000;
    while (!seen.includes(body) && Date.now() < deadline) {
      const batch = await consumer.receive(100, 500);
      seen.push(...batch.map((m) => m.body.toString()));
      if (batch.length) await consumer.ack(batch);
    }
    expect(seen).toContain(body);
  } finally {
    await consumer.shutdown();
  }
}

describe('bad input fails alone', () => {
  it('closes a connection that sends garbage bytes', async () => {
    const c = await raw();
    c.socket.write(Buffer.from([0, 0, 0, 12, 0, 0, 0, 8, 0xc1, 0xff, 0x00, 0x13, 0x37, 0xc1, 0xc1, 0xc1]));
    await c.closed;
    const errors = c.frames.filter((f) => f.header.e);
    expect(errors[0]?.header.e?.code).toBe('MALFORMED_FRAME');
    await healthy();
  });

  it('answers a frame that claims 2 GiB with FRAME_TOO_LARGE and closes, without buffering it', async () => {
    const c = await raw();
    const prefix = Buffer.alloc(8);
    prefix.writeUInt32BE(2 ** 31, 0);
    c.socket.write(prefix);
    const f = await c.next();
    expect(f.header.e?.code).toBe('FRAME_TOO_LARGE');
    await c.closed;
    expect(broker.stderr()).toMatch(/exceeds the limit/);
    await healthy();
  });

  it('answers an unknown command code with UNKNOWN_COMMAND and keeps the connection', async () => {
    const c = await raw();
    c.socket.write(hello);
    expect((await c.next()).header.e).toBeUndefined();
    c.socket.write(frame(999, 2, {}));
    const f = await c.next();
    expect(f.header.i).toBe(2);
    expect(f.header.e?.code).toBe('UNKNOWN_COMMAND');
    c.socket.write(frame(Command.HEARTBEAT, 3, {}));
    const ok = await c.next();
    expect(ok.header.i).toBe(3);
    expect(ok.header.e).toBeUndefined();
    c.socket.destroy();
    await healthy();
  });

  it('requires HELLO first', async () => {
    const c = await raw();
    c.socket.write(frame(Command.LIST_TOPICS, 7, {}));
    const f = await c.next();
    expect(f.header.e?.code).toBe('ILLEGAL_STATE');
    c.socket.destroy();
  });

  it('rejects a 10 MiB message with MESSAGE_TOO_LARGE, stores nothing, keeps serving', async () => {
    const c = await raw();
    c.socket.write(hello);
    await c.next();
    const bigTopic = uniqueName('big');
    const body = Buffer.alloc(10 * 1024 * 1024, 7);
    c.socket.write(frame(Command.SEND, 2, { messages: [{ t: bigTopic, id: 'BIG1', n: body.length, b: Date.now() }] }, body));
    const f = await c.next();
    expect(f.header.e?.code).toBe('MESSAGE_TOO_LARGE');
    // Same connection still works, and the oversized message left no trace.
    c.socket.write(frame(Command.LIST_TOPICS, 3, {}));
    const list = await c.next();
    expect(list.header.e).toBeUndefined();
    expect(JSON.stringify(list.header.d)).not.toContain(bigTopic);
    c.socket.destroy();
    await healthy();
  });

  it('rejects malformed payloads with INVALID_ARGUMENT', async () => {
    const c = await raw();
    c.socket.write(hello);
    await c.next();
    c.socket.write(frame(Command.SEND, 2, { messages: 'not-an-array' }));
    expect((await c.next()).header.e?.code).toBe('INVALID_ARGUMENT');
    c.socket.write(frame(Command.SEND, 3, { messages: [{ t: 'bad topic name!', id: 'x', n: 0, b: 0 }] }));
    expect((await c.next()).header.e?.code).toBe('INVALID_ARGUMENT');
    c.socket.write(frame(Command.SEND, 4, { messages: [{ t: 'ok', id: 'x', n: 99, b: 0 }] }, Buffer.from('short')));
    expect((await c.next()).header.e?.code).toBe('MALFORMED_FRAME');
    c.socket.destroy();
    await healthy();
  });
});
