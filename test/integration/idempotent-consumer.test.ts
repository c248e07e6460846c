import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin, LevelIdempotencyStore, Producer, PushConsumer, idempotent } from '../../src/index.js';
import type { ReceivedMessage } from '../../src/index.js';
import { removeDir, startBrokerProcess, tempDir, uniqueName, waitFor } from '../helpers/broker-process.js';
import type { BrokerProcess } from '../helpers/broker-process.js';

let broker: BrokerProcess;
let producer: Producer;
let admin: Admin;
let storeDir: string;

beforeAll(async () => {
  // Short retry delays: a failed delivery comes back in 200 ms instead of RocketMQ's 10 s.
  broker = await startBrokerProcess({ args: ['--flush', 'sync', '--retry-delays', '200ms,500ms'] });
  producer = new Producer({ endpoints: broker.endpoints });
  await producer.start();
  admin = new Admin({ endpoints: broker.endpoints });
  storeDir = await tempDir('halfmq-idem-store-');
});

afterAll(async () => {
  await producer?.shutdown();
  await admin?.shutdown();
  await broker?.stop();
  if (broker) await removeDir(broker.dataDir);
  if (storeDir) await removeDir(storeDir);
});

/** Everything the group was handed has been acked: no lag, nothing in flight. */
async function groupSettled(group: string): Promise<boolean> {
  const status = await admin.groupStatus(group);
  return status.totalLag === 0 && status.queues.every((q) => q.inflight === 0);
}

describe('Idempotency wrapper against a broker process', () => {
  it('duplicates injected (same business key sent twice, lost acks redelivered): the side effect happens once per key', async () => {
    const topic = uniqueName('idem');
    const group = uniqueName('points');
    await admin.createTopic(topic, { queues: 4 });
    const store = new LevelIdempotencyStore({ path: path.join(storeDir, 'dup') });

    const credited = new Map<string, number>(); // the side effect
    const deliveries: ReceivedMessage[] = [];
    const skipped: string[] = [];
    const credit = idempotent(
      async (m: ReceivedMessage) => {
        const key = m.keys[0]!;
        credited.set(key, (credited.get(key) ?? 0) + 1);
      },
      { store, key: (m) => m.keys[0], onDuplicate: (_m, key) => skipped.push(key) },
    );
    // Orders whose first delivery "loses its ack": the side effect and the store record happen,
    // then the handler fails, as if the consumer died before acking. The broker redelivers.
    const loseAckOnce = new Set(['order-1', 'order-4', 'order-7']);
    const lostAckFor = new Set<string>(); // msgIds whose first delivery failed after the side effect
    const recovered = new Set<string>(); // of those, the ones whose later delivery was acked
    const consumer = new PushConsumer({
      endpoints: broker.endpoints,
      group,
      subscriptions: { [topic]: '*' },
      concurrency: 16,
      handler: async (m) => {
        deliveries.push(m);
        await credit(m);
        if (lostAckFor.has(m.msgId)) recovered.add(m.msgId);
        if (loseAckOnce.has(m.keys[0]!) && !lostAckFor.has(m.msgId)) {
          lostAckFor.add(m.msgId);
          throw new Error('simulated crash after the side effect, before the ack');
        }
      },
    });
    await consumer.start();
    try {
      const keys = Array.from({ length: 10 }, (_, i) => `order-${i}`);
      // Every order is sent twice as two messages (two msgIds) with the same business key, as a
      // producer retrying after a timeout would; one pair goes out as a batch, so both copies may
      // be handled concurrently by different handler slots.
      await Promise.all(
        keys.map((key) => {
          const msg = { topic, body: JSON.stringify({ orderId: key, points: 10 }), keys: [key] };
          return key === 'order-9' ? producer.sendBatch([msg, msg]) : Promise.all([producer.send(msg), producer.send(msg)]);
        }),
      );
      // Both copies of each lost-ack key fail once (6 msgIds); each must come back and be acked.
      await waitFor(
        async () =>
          credited.size === keys.length &&
          lostAckFor.size === 2 * loseAckOnce.size &&
          [...lostAckFor].every((id) => recovered.has(id)) &&
          (await groupSettled(group)),
        'all deliveries, and the redeliveries of the lost acks, acked',
        45_000,
      );
      // Anything still scheduled for a retry (delays are at most 500 ms) has had its chance to run.
      await new Promise((r) => setTimeout(r, 1_000));

      for (const key of keys) expect(credited.get(key), key).toBe(1);
      expect(new Set(deliveries.map((d) => d.msgId)).size).toBe(20);
      // each lost ack came back (same msgId, reconsumeTimes > 0) and was skipped, not re-run
      for (const id of lostAckFor) expect(deliveries.some((d) => d.msgId === id && d.reconsumeTimes > 0), id).toBe(true);
      expect(skipped.length).toBeGreaterThanOrEqual(keys.length + lostAckFor.size);
    } finally {
      await consumer.shutdown();
      await store.close();
    }
  });

  it('a consumer that dies after the side effect but before the ack: its replacement, with the same level store, skips the redelivery', async () => {
    const topic = uniqueName('idem-crash');
    const group = uniqueName('points');
    await admin.createTopic(topic, { queues: 1 });
    const dir = path.join(storeDir, 'crash');
    const credited: string[] = [];
    const creditPoints = async (m: ReceivedMessage): Promise<void> => void credited.push(m.msgId);

    // First consumer: handles the message, records it, then hangs and is torn down without acking.
    const storeA = new LevelIdempotencyStore({ path: dir });
    let handled!: () => void;
    const handledOnce = new Promise<void>((r) => (handled = r));
    const wrappedA = idempotent(creditPoints, { store: storeA });
    const consumerA = new PushConsumer({
      endpoints: broker.endpoints,
      group,
      subscriptions: { [topic]: '*' },
      shutdownTimeoutMs: 200,
      invisibleMs: 60_000,
      handler: async (m) => {
        await wrappedA(m);
        handled();
        await new Promise(() => undefined); // never acks
      },
    });
    await consumerA.start();
    const sent = await producer.send({ topic, body: 'order-42', keys: ['order-42'] });
    await handledOnce;
    await consumerA.shutdown(); // leaves the group with the message unacked: the broker redelivers it
    await storeA.close();

    const storeB = new LevelIdempotencyStore({ path: dir });
    const redelivered: ReceivedMessage[] = [];
    const wrappedB = idempotent(creditPoints, { store: storeB });
    const consumerB = new PushConsumer({
      endpoints: broker.endpoints,
      group,
      subscriptions: { [topic]: '*' },
      handler: async (m) => {
        redelivered.push(m);
        return wrappedB(m);
      },
    });
    await consumerB.start();
    try {
      await waitFor(async () => redelivered.length > 0 && (await groupSettled(group)), 'the redelivery acked', 30_000);
      expect(redelivered[0]!.msgId).toBe(sent.msgId);
      expect(credited).toEqual([sent.msgId]);
    } finally {
      await consumerB.shutdown();
      await storeB.close();
    }
  });
});
