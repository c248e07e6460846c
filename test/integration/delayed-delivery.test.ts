import { afterEach, describe, expect, it } from 'vitest';
import { Producer, SimpleConsumer } from '../../src/index.js';
import type { ReceivedMessage } from '../../src/index.js';
import { removeDir, startBrokerProcess, tempDir, uniqueName } from '../helpers/broker-process.js';
import type { BrokerProcess } from '../helpers/broker-process.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

async function started(dataDir: string): Promise<BrokerProcess> {
  const b = await startBrokerProcess({ dataDir, args: ['--flush', 'sync'] });
  cleanup.push(() => b.kill9());
  return b;
}

/**
 * Everything a fresh group sees on the topic, acked: for `ms`, or, given `expected`, until that many
 * arrived plus `settleMs` more (to catch a duplicate) or a generous deadline. Waiting on a count
 * rather than a clock keeps a slow restart on a loaded machine from looking like a lost message.
 */
async function drain(
  endpoints: string,
  topic: string,
  ms: number,
  until?: { expected: number; settleMs: number },
): Promise<{ m: ReceivedMessage; at: number }[]> {
  const consumer = new SimpleConsumer({ endpoints, group: uniqueName('g'), subscriptions: { [topic]: '*' } });
  await consumer.start();
  const got: { m: ReceivedMessage; at: number }[] = [];
  let end = Date.now() + ms;
  let settling = false;
  try {
    while (Date.now() < end) {
      if (until !== undefined && !settling && got.length >= until.expected) {
        settling = true;
        end = Date.now() + until.settleMs;
      }
      const batch = await consumer.receive(64, Math.max(0, Math.min(500, end - Date.now())));
      for (const m of batch) got.push({ m, at: Date.now() });
      if (batch.length > 0) await consumer.ack(batch);
    }
  } finally {
    await consumer.shutdown();
  }
  return got;
}

describe('delayed delivery', () => {
  it('holds a message until its time, across a kill -9, and releases it exactly once', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const topic = uniqueName('delayed');
    let broker = await started(dataDir);
    const producer = new Producer({ endpoints: broker.endpoints });
    const sentAt = Date.now();
    const early = await producer.send({ topic, body: 'early', delayMs: 200 });
    const late = await producer.send({ topic, body: 'late', delayMs: 3_000 });
    const at = await producer.send({ topic, body: 'at', deliverAt: sentAt + 3_500 });
    const now = await producer.send({ topic, body: 'now' });
    await producer.shutdown();
    expect(late.queueOffset).toBe(-1); // held: no queue position until delivered

    const before = await drain(broker.endpoints, topic, 1_200);
    expect(before.map((g) => g.m.body.toString()).sort()).toEqual(['early', 'now']);
    expect(before.find((g) => g.m.msgId === early.msgId)!.at - sentAt).toBeGreaterThanOrEqual(150);

    await broker.kill9();
    broker = await started(dataDir);
    expect(broker.stderr()).toMatch(/unclean shutdown/);

    const after = await drain(broker.endpoints, topic, sentAt + 20_000 - Date.now(), { expected: 4, settleMs: 500 });
    const byBody = new Map(after.map((g) => [g.m.body.toString(), g]));
    // A fresh group sees every message once: nothing released twice by the restart.
    expect(after.map((g) => g.m.body.toString()).sort()).toEqual(['at', 'early', 'late', 'now']);
    expect(byBody.get('late')!.m.msgId).toBe(late.msgId);
    expect(byBody.get('late')!.at - sentAt).toBeGreaterThanOrEqual(3_000 - 50);
    expect(byBody.get('at')!.m.msgId).toBe(at.msgId);
    expect(byBody.get('at')!.at - sentAt).toBeGreaterThanOrEqual(3_500 - 50);
    expect(now.queueOffset).toBeGreaterThanOrEqual(0);
  });
});
