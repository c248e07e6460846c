import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionFailedError, IllegalStateError, InvalidArgumentError, MessageTooLargeError, TopicNotFoundError } from '../../../src/common/errors.js';
import { Connection } from '../../../src/client/connection.js';
import { Producer } from '../../../src/client/producer.js';
import { Command } from '../../../src/protocol/commands.js';
import type { SendRequest } from '../../../src/protocol/commands.js';
import { FakeBroker } from './fake-broker.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

function sendHandler() {
  let offset = 0;
  return (code: number, payload: unknown) => {
    if (code !== Command.SEND) return {};
    const messages = (payload as SendRequest).messages!;
    return { results: messages.map((m) => ({ msgId: m.id, topic: m.t, queueId: 0, queueOffset: offset++ })) };
  };
}

describe('Connection', () => {
  it('fails fast with the address and the reason when nothing listens', async () => {
    const port = await freePort();
    const connection = new Connection({ endpoints: `127.0.0.1:${port}` });
    cleanup.push(() => connection.close());
    const err = await connection.request(Command.LIST_TOPICS, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionFailedError);
    expect((err as Error).message).toBe(`could not connect to broker at 127.0.0.1:${port}: ECONNREFUSED`);
    expect(connection.state).toBe('idle');
  });

  it('validates its endpoint', () => {
    expect(() => new Connection({ endpoints: 'nope' })).toThrow(InvalidArgumentError);
  });

  it('says HELLO, then carries requests; typed remote errors come back', async () => {
    const broker = await new FakeBroker(() => {
      throw new TopicNotFoundError('topic x does not exist');
    }).listen();
    cleanup.push(() => broker.stop());
    const connection = new Connection({ endpoints: broker.endpoint, clientId: 'c1', producerGroup: 'pg' });
    cleanup.push(() => connection.close());
    await expect(connection.request(Command.LIST_TOPICS, {})).rejects.toBeInstanceOf(TopicNotFoundError);
    expect(broker.requests[0]).toMatchObject({ code: Command.HELLO, payload: { version: 1, clientId: 'c1', producerGroup: 'pg' } });
    expect(connection.state).toBe('ready');
  });

  it('reconnects in the background after a drop and emits reconnect', async () => {
    const broker = await new FakeBroker().listen();
    const port = broker.port;
    const connection = new Connection({ endpoints: broker.endpoint, reconnectBackoff: { initialMs: 20, maxMs: 50 } });
    cleanup.push(() => connection.close());
    await connection.connect();
    const reconnected = new Promise<void>((resolve) => connection.once('reconnect', () => resolve()));
    await broker.stop();
    await new Promise((r) => setTimeout(r, 150)); // a few refused attempts while it is down
    expect(connection.state).toBe('connecting');
    const pending = connection.request(Command.LIST_TOPICS, {}); // waits for the reconnection
    const restarted = await new FakeBroker().listen(port);
    cleanup.push(() => restarted.stop());
    await reconnected;
    await expect(pending).resolves.toMatchObject({ payload: {} });
    expect(connection.state).toBe('ready');
  });

  it('rejects after close and closes promptly', async () => {
    const broker = await new FakeBroker().listen();
    cleanup.push(() => broker.stop());
    const connection = new Connection({ endpoints: broker.endpoint });
    await connection.connect();
    await connection.close();
    expect(connection.state).toBe('closed');
    await expect(connection.request(Command.LIST_TOPICS, {})).rejects.toBeInstanceOf(IllegalStateError);
  });
});

describe('Producer', () => {
  it('sends, batches and checks the size limit without contacting the broker', async () => {
    const broker = await new FakeBroker().listen();
    const handler = sendHandler();
    broker.handle = (frame) => handler(frame.header.c, frame.header.d);
    cleanup.push(() => broker.stop());
    const producer = new Producer({ endpoints: broker.endpoint });
    cleanup.push(() => producer.shutdown());
    await producer.start();
    const r = await producer.send({ topic: 'orders', body: 'hello', keys: 'k' });
    expect(r).toMatchObject({ topic: 'orders', queueId: 0, queueOffset: 0 });
    expect(r.msgId).toMatch(/^[0-9a-f]{32}$/);
    const batch = await producer.sendBatch([
      { topic: 'orders', body: 'a' },
      { topic: 'orders', body: 'bb' },
    ]);
    expect(batch.map((b) => b.queueOffset)).toEqual([1, 2]);
    const sends = broker.requests.filter((q) => q.code === Command.SEND);
    expect(sends).toHaveLength(2);
    expect(sends[1]!.body.toString()).toBe('abb');
    await expect(producer.send({ topic: 'orders', body: Buffer.alloc(1025) })).rejects.toBeInstanceOf(MessageTooLargeError);
    expect(broker.count(Command.SEND)).toBe(2);
    await producer.sendOneway({ topic: 'orders', body: 'fire' });
    await new Promise((r) => setTimeout(r, 50));
    expect(broker.count(Command.SEND)).toBe(3);
  });

  it('retries a send after a dropped connection with the same msgId', async () => {
    const broker = await new FakeBroker().listen();
    cleanup.push(() => broker.stop());
    const handler = sendHandler();
    let dropped = false;
    broker.handle = (frame, peer) => {
      if (frame.header.c === Command.SEND && !dropped) {
        dropped = true;
        peer.destroy(); // stored or not, the producer cannot know: it must resend
        return new Promise(() => undefined);
      }
      return handler(frame.header.c, frame.header.d);
    };
    const producer = new Producer({ endpoints: broker.endpoint, reconnectBackoff: { initialMs: 10 } });
    cleanup.push(() => producer.shutdown());
    const result = await producer.send({ topic: 'orders', body: 'x' });
    const ids = broker.requests.filter((q) => q.code === Command.SEND).map((q) => (q.payload as SendRequest).messages![0]!.id);
    expect(ids).toEqual([result.msgId, result.msgId]);
  });
});
