import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin, MessageTooLargeError, Producer, PushConsumer, SimpleConsumer, TopicNotFoundError } from '../../src/index.js';
import type { ReceivedMessage } from '../../src/index.js';
import { Connection } from '../../src/client/connection.js';
import { Command } from '../../src/protocol/commands.js';
import type { SendResponse } from '../../src/protocol/commands.js';
import { removeDir, startBrokerProcess, uniqueName, waitFor } from '../helpers/broker-process.js';
import type { BrokerProcess } from '../helpers/broker-process.js';

let broker: BrokerProcess;
let producer: Producer;
let admin: Admin;

beforeAll(async () => {
  broker = await startBrokerProcess({ args: ['--flush', 'sync'] });
  producer = new Producer({ endpoints: broker.endpoints });
  await producer.start();
  admin = new Admin({ endpoints: broker.endpoints });
});

afterAll(async () => {
  await producer?.shutdown();
  await admin?.shutdown();
  await broker?.stop();
  if (broker) await removeDir(broker.dataDir);
});

async function drain(endpoints: string, group: string, topic: string, count: number, expr = '*'): Promise<ReceivedMessage[]> {
  const consumer = new SimpleConsumer({ endpoints, group, subscriptions: { [topic]: expr } });
  await consumer.start();
  const got: ReceivedMessage[] = [];
  const deadline = Date.now() + 20_000;
  try {
    while (got.length < count && Date.now() < deadline) {
      const batch = await consumer.receive(64, 1000);
      got.push(...batch);
      if (batch.length > 0) await consumer.ack(batch);
    }
  } finally {
    await consumer.shutdown();
  }
  return got;
}

describe('SDK round trip against a broker process', () => {
  it('sends and consumes a message with all its fields intact', async () => {
    const topic = uniqueName('rt');
    await admin.createTopic(topic, { queues: 2 });
    const sent = await producer.send({ topic, body: 'hello ✓', tag: 'TagA', keys: ['order-1', 'user-7'], properties: { region: 'eu' } });
    expect(sent).toMatchObject({ topic, queueOffset: 0 });
    expect(sent.msgId).toMatch(/^[0-9A-F]{32}$/i);
    const [msg] = await drain(broker.endpoints, uniqueName('g'), topic, 1);
    expect(msg).toBeDefined();
    expect(msg!.msgId).toBe(sent.msgId);
    expect(msg!.body.toString()).toBe('hello ✓');
    expect(msg!.tag).toBe('TagA');
    expect(msg!.keys).toEqual(['order-1', 'user-7']);
    expect(msg!.properties).toMatchObject({ region: 'eu' });
    expect(msg!.queueId).toBe(sent.queueId);
    expect(msg!.reconsumeTimes).toBe(0);
    expect(msg!.storeTimestamp).toBeGreaterThan(0);
  });

  it('pipelines 2,000 concurrent sends: every one acknowledged with a distinct queue offset, all consumed', async () => {
    const topic = uniqueName('pipe');
    await admin.createTopic(topic, { queues: 4 });
    const results = await Promise.all(Array.from({ length: 2000 }, (_, i) => producer.send({ topic, body: `m-${i}` })));
    const positions = new Set(results.map((r) => `${r.queueId}:${r.queueOffset}`));
    expect(positions.size).toBe(2000);
    expect(new Set(results.map((r) => r.msgId)).size).toBe(2000);
    const got = await drain(broker.endpoints, uniqueName('g'), topic, 2000);
    expect(new Set(got.map((m) => m.body.toString())).size).toBe(2000);
  });

  it('sends a batch in one request, in order', async () => {
    const topic = uniqueName('batch');
    await admin.createTopic(topic, { queues: 1 });
    const results = await producer.sendBatch(Array.from({ length: 50 }, (_, i) => ({ topic, body: `b-${i}` })));
    expect(results.map((r) => r.queueOffset)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const got = await drain(broker.endpoints, uniqueName('g'), topic, 50);
    expect(got.map((m) => m.body.toString())).toEqual(Array.from({ length: 50 }, (_, i) => `b-${i}`));
  });

  it('answers SEND with compact results when asked, and with a map per message otherwise (older clients)', async () => {
    const topic = uniqueName('rt-reply');
    const conn = new Connection({ endpoints: broker.endpoints });
    await conn.connect();
    try {
      const messages = [
        { t: topic, id: 'REPLY-1', n: 1, b: Date.now() },
        { t: topic, id: 'REPLY-2', n: 1, b: Date.now() },
      ];
      const compact = await conn.request<SendResponse>(Command.SEND, { messages, cr: true }, Buffer.from('ab'));
      expect(compact.payload.results).toBeUndefined();
      expect(compact.payload.q).toHaveLength(2);
      expect(compact.payload.o).toHaveLength(2);
      const full = await conn.request<SendResponse>(Command.SEND, { messages: messages.map((m) => ({ ...m, id: `${m.id}-again` })) }, Buffer.from('cd'));
      expect(full.payload.q).toBeUndefined();
      expect(full.payload.results!.map((r) => r.msgId)).toEqual(['REPLY-1-again', 'REPLY-2-again']);
      // The same queues got the next offsets, whichever form reported them.
      for (let i = 0; i < 2; i++) {
        const r = full.payload.results![i]!;
        const sameQueue = compact.payload.q!.indexOf(r.queueId);
        if (sameQueue >= 0) expect(r.queueOffset).toBeGreaterThan(compact.payload.o![sameQueue]!);
      }
    } finally {
      await conn.close();
    }
  });

  it('routes the same sharding key to the same queue every time', async () => {
    const topic = uniqueName('shard');
    await admin.createTopic(topic, { queues: 8 });
    const byKey = new Map<string, Set<number>>();
    for (let i = 0; i < 120; i++) {
      const key = `customer-${i % 6}`;
      const r = await producer.send({ topic, body: `s-${i}`, shardingKey: key });
      if (!byKey.has(key)) byKey.set(key, new Set());
      byKey.get(key)!.add(r.queueId);
    }
    for (const queues of byKey.values()) expect(queues.size).toBe(1);
    // and the keys are spread, not all on one queue
    expect(new Set([...byKey.values()].map((s) => [...s][0])).size).toBeGreaterThan(1);
  });

  it('delivers to a PushConsumer within milliseconds, and redelivers what the handler throws on', async () => {
    const topic = uniqueName('push');
    await admin.createTopic(topic, { queues: 2 });
    const seen: { body: string; reconsumeTimes: number; at: number }[] = [];
    let failedOnce = false;
    const consumer = new PushConsumer({
      endpoints: broker.endpoints,
      group: uniqueName('g'),
      subscriptions: { [topic]: '*' },
      handler: async (msg) => {
        seen.push({ body: msg.body.toString(), reconsumeTimes: msg.reconsumeTimes, at: Date.now() });
        if (msg.body.toString() === 'fail-once' && !failedOnce) {
          failedOnce = true;
          throw new Error('downstream unavailable');
        }
      },
    });
    await consumer.start();
    try {
      await new Promise((r) => setTimeout(r, 200)); // let the long poll park
      const sentAt = Date.now();
      await producer.send({ topic, body: 'fast' });
      await waitFor(() => seen.some((s) => s.body === 'fast'), 'push delivery');
      const latency = seen.find((s) => s.body === 'fast')!.at - sentAt;
      expect(latency).toBeLessThan(1000); // long polling, not a sleep loop (generous for a noisy machine)
      await producer.send({ topic, body: 'fail-once' });
      await waitFor(() => seen.filter((s) => s.body === 'fail-once').length >= 2, 'redelivery after a throw');
      const attempts = seen.filter((s) => s.body === 'fail-once');
      expect(attempts[0]!.reconsumeTimes).toBe(0);
      expect(attempts[1]!.reconsumeTimes).toBe(1);
    } finally {
      await consumer.shutdown();
    }
  });

  it('filters by tag expression on the broker', async () => {
    const topic = uniqueName('tags');
    await admin.createTopic(topic, { queues: 2 });
    for (const tag of ['A', 'B', 'C', 'A', undefined]) await producer.send({ topic, body: `t-${tag ?? 'none'}`, tag });
    const got = await drain(broker.endpoints, uniqueName('g'), topic, 3, 'A || C');
    expect(got.map((m) => m.tag).sort()).toEqual(['A', 'A', 'C']);
  });

  it('continues where the group left off, and reports lag', async () => {
    const topic = uniqueName('resume');
    const group = uniqueName('g');
    await admin.createTopic(topic, { queues: 2 });
    for (let i = 0; i < 10; i++) await producer.send({ topic, body: `r-${i}` });
    const first = await drain(broker.endpoints, group, topic, 10);
    expect(first).toHaveLength(10);
    for (let i = 10; i < 15; i++) await producer.send({ topic, body: `r-${i}` });
    await waitFor(async () => (await admin.groupStatus(group)).totalLag === 5, 'lag of 5');
    const second = await drain(broker.endpoints, group, topic, 5);
    expect(second.map((m) => m.body.toString()).sort()).toEqual(['r-10', 'r-11', 'r-12', 'r-13', 'r-14']);
    await waitFor(async () => (await admin.groupStatus(group)).totalLag === 0, 'lag of 0');
  });

  it('auto-creates a topic on first send', async () => {
    const topic = uniqueName('auto');
    await producer.send({ topic, body: 'x' });
    const topics = await admin.listTopics();
    expect(topics.find((t) => t.name === topic)).toMatchObject({ queues: 4, messages: 1 });
    // Several entries (sharding keys make them entries, not records) waiting for one new topic:
    // it is created once and each message is stored once, in its key's queue.
    const sharded = uniqueName('auto-sharded');
    const results = await producer.sendBatch(['a', 'b', 'a', 'c'].map((key, i) => ({ topic: sharded, body: `m${i}`, shardingKey: key })));
    expect(results[0]!.queueId).toBe(results[2]!.queueId);
    expect((await admin.listTopics()).find((t) => t.name === sharded)).toMatchObject({ queues: 4, messages: 4 });
  });

  it('rejects an oversized message before it reaches the broker, and subscribing to a missing topic', async () => {
    await expect(producer.send({ topic: uniqueName('big'), body: Buffer.alloc(4 * 1024 * 1024 + 1) })).rejects.toBeInstanceOf(MessageTooLargeError);
    const consumer = new SimpleConsumer({ endpoints: broker.endpoints, group: uniqueName('g'), subscriptions: { [uniqueName('missing')]: '*' } });
    await expect(consumer.start()).rejects.toBeInstanceOf(TopicNotFoundError);
    await consumer.shutdown();
  });
});

describe('a broker with --auto-create-topics false', () => {
  it('refuses sends to unknown topics with a clear, typed error', async () => {
    const b = await startBrokerProcess({ args: ['--auto-create-topics', 'false'] });
    const p = new Producer({ endpoints: b.endpoints });
    try {
      await p.start();
      const err = await p.send({ topic: 'nope', body: 'x' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TopicNotFoundError);
      expect((err as TopicNotFoundError).retriable).toBe(false);
      expect((err as Error).message).toContain('nope');
      // A request that fails on a later message while its topic is being looked up fails alone:
      // the broker keeps serving (the refused topic lookup must not go unhandled).
      const conn = new Connection({ endpoints: b.endpoints });
      try {
        const entry = (id: string) => ({ t: 'nope', id, n: 1 });
        await expect(conn.request(Command.SEND, { messages: [entry('ok-id-1'), entry('bad id')] }, Buffer.from('ab'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        await new Promise((resolve) => setTimeout(resolve, 100));
        await expect(conn.request(Command.SEND, { messages: [entry('ok-id-2')] }, Buffer.from('c'))).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
      } finally {
        await conn.close();
      }
    } finally {
      await p.shutdown();
      await b.stop();
      await removeDir(b.dataDir);
    }
  });
});
