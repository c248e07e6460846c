import { afterEach, describe, expect, it } from 'vitest';
import { Admin, Producer, PushConsumer } from '../../src/index.js';
import type { ReceivedMessage } from '../../src/index.js';
import { removeDir, startBrokerProcess, uniqueName, waitFor } from '../helpers/broker-process.js';
import type { BrokerProcess } from '../helpers/broker-process.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

async function setup(queues: number): Promise<{ broker: BrokerProcess; topic: string; group: string; producer: Producer }> {
  const broker = await startBrokerProcess({ args: ['--retry-delays', '50ms'] });
  cleanup.push(async () => {
    await broker.stop();
    await removeDir(broker.dataDir);
  });
  const topic = uniqueName('modes');
  const admin = new Admin({ endpoints: broker.endpoints });
  await admin.createTopic(topic, { queues });
  await admin.shutdown();
  const producer = new Producer({ endpoints: broker.endpoints });
  cleanup.push(() => producer.shutdown());
  return { broker, topic, group: uniqueName('g'), producer };
}

function consumer(broker: BrokerProcess, options: Omit<ConstructorParameters<typeof PushConsumer>[0], 'endpoints'>): PushConsumer {
  const c = new PushConsumer({ endpoints: broker.endpoints, ...options });
  cleanup.push(() => c.shutdown());
  return c;
}

describe('delivery modes', () => {
  it('orderly: per sharding key, one at a time and in send order, failures retried in place', async () => {
    const { broker, topic, group, producer } = await setup(4);
    const keys = ['alice', 'bob', 'carol'];
    const PER_KEY = 200;
    const done = new Map<string, number[]>(keys.map((k) => [k, []]));
    const running = new Set<string>();
    const violations: string[] = [];
    let failures = 0;
    const handler = async (m: ReceivedMessage): Promise<void> => {
      const [key, seq] = m.body.toString().split(':') as [string, string];
      if (running.has(key)) violations.push(`${key} handled concurrently at ${seq}`);
      running.add(key);
      try {
        await new Promise((r) => setImmediate(r));
        if (Math.random() < 0.1) {
          failures++;
          throw new Error(`flaky ${key}:${seq}`);
        }
        const list = done.get(key)!;
        if (list.length !== Number(seq)) violations.push(`${key}: ${seq} after ${list.at(-1)}`);
        list.push(Number(seq));
      } finally {
        running.delete(key);
      }
    };
    // Two members: each key is handled by whichever owns its queue, never by both at once.
    const members = [0, 1].map(() => consumer(broker, { group, subscriptions: { [topic]: '*' }, orderly: true, concurrency: 8, handler }));
    for (const c of members) await c.start();
    for (let seq = 0; seq < PER_KEY; seq++) {
      await producer.sendBatch(keys.map((key) => ({ topic, body: `${key}:${seq}`, shardingKey: key })));
    }
    await waitFor(() => keys.every((k) => done.get(k)!.length === PER_KEY) || violations.length > 0, 'every key done', 40_000);
    expect(violations).toEqual([]);
    for (const k of keys) expect(done.get(k)).toEqual(Array.from({ length: PER_KEY }, (_, i) => i));
    expect(failures).toBeGreaterThan(0);
  });

  it('broadcast: every member receives every message', async () => {
    const { broker, topic, group, producer } = await setup(2);
    const got = [0, 1, 2].map(() => new Set<string>());
    const members = got.map((set) => consumer(broker, { group, subscriptions: { [topic]: '*' }, mode: 'broadcast', handler: (m) => void set.add(m.body.toString()) }));
    for (const c of members) await c.start();
    const bodies = Array.from({ length: 50 }, (_, i) => `b-${i}`);
    await producer.sendBatch(bodies.map((body) => ({ topic, body })));
    await waitFor(() => got.every((s) => s.size === bodies.length), 'all three members to get all 50');
    for (const s of got) expect([...s].sort()).toEqual([...bodies].sort());
  });

  it('clustering: each message goes to exactly one member', async () => {
    const { broker, topic, group, producer } = await setup(6);
    const got = [0, 1, 2].map(() => [] as string[]);
    const members = got.map((list) => consumer(broker, { group, subscriptions: { [topic]: '*' }, handler: (m) => void list.push(m.body.toString()) }));
    for (const c of members) await c.start();
    const admin = new Admin({ endpoints: broker.endpoints });
    cleanup.push(() => admin.shutdown());
    await waitFor(async () => (await admin.groupStatus(group)).members.length === 3, 'three members');
    const bodies = Array.from({ length: 60 }, (_, i) => `c-${i}`);
    await producer.sendBatch(bodies.map((body) => ({ topic, body })));
    await waitFor(() => got.flat().length >= bodies.length, 'all 60 consumed');
    await waitFor(async () => (await admin.groupStatus(group)).totalLag === 0, 'all acked');
    expect(got.flat().sort()).toEqual([...bodies].sort());
    expect(got.every((list) => list.length > 0)).toBe(true);
  });
});
