import { randomBytes } from 'node:crypto';
import { Producer } from '../../client/producer.js';
import { TransactionProducer } from '../../client/transaction-producer.js';
import { InternalError } from '../../common/errors.js';
import { Histogram } from './histogram.js';
import { WARMUP_MS, benchConsumer, benchName, closedLoop, createTopic, result } from './scenarios.js';
import type { BenchResult, ScenarioContext } from './scenarios.js';

/** The check scenario's embedded broker: first check 1 s after the half, re-checks every second. */
const CHECK_TIMEOUT_MS = 1_000;
export const CHECK_BROKER_ARGS: string[] = ['--tx-timeout-ms', String(CHECK_TIMEOUT_MS), '--tx-check-interval-ms', '1000', '--tx-check-max', '1000'];
const CONNECT_TIMEOUT_MS = 10_000;

/** tx: transactions per second, each one half message + COMMIT, both acknowledged after being durable. */
export async function txScenario(ctx: ScenarioContext): Promise<BenchResult> {
  const { options: o, endpoints, progress } = ctx;
  const topic = benchName('tx');
  await createTopic(endpoints, topic, o.queues);
  const producer = new TransactionProducer({ endpoints, group: benchName('txgroup'), connectTimeoutMs: CONNECT_TIMEOUT_MS, checker: async () => 'COMMIT' });
  const body = randomBytes(o.size);
  const messages = Array.from({ length: o.batch }, () => ({ topic, body }));
  const commit = async (): Promise<'COMMIT'> => 'COMMIT';
  try {
    await producer.start();
    const one = async (): Promise<void> => {
      const r = await producer.sendInTransaction(o.batch === 1 ? messages[0]! : messages, commit);
      if (r.state !== 'COMMIT') throw new InternalError(`transaction ${r.transactionId} ended ${r.state}`);
    };
    // The broker's transaction code runs once per batch frame (~120 transactions): after the old
    // 1,000-transaction warm-up, runs of 30,000 measured 19.5-24k tx/s and runs of 300,000 29-32k.
    await closedLoop(Number.MAX_SAFE_INTEGER, o.concurrency, 1, performance.now() + WARMUP_MS, one, (done) => progress.update('warm-up', done, done));
    progress.done();
    const hist = new Histogram();
    const start = performance.now();
    const { completed, lastAt } = await closedLoop(o.messages, o.concurrency, 1, start + o.durationS * 1000, async () => {
      const t0 = performance.now();
      await one();
      hist.recordMs(performance.now() - t0);
    }, (done) => progress.update('tx', done, o.messages));
    progress.done();
    const seconds = (lastAt - start) / 1000;
    const plain = await plainSends(ctx, topic, body, completed);
    const txPerSec = completed / Math.max(seconds, 1e-9);
    return result('tx', completed, seconds, o.size * o.batch, hist, {
      size: o.size,
      messagesPerTransaction: o.batch,
      concurrency: o.concurrency,
      warmupSeconds: WARMUP_MS / 1000,
      latency: 'sendInTransaction: half send + local tx (no-op) + COMMIT acknowledged',
      // The same broker, size, concurrency and count, right after: what a transaction costs.
      plainSends: plain,
      txToPlainRatio: Math.round((txPerSec / Math.max(plain.msgsPerSec, 1)) * 100) / 100,
    });
  } finally {
    await producer.shutdown();
  }
}

/** Plain acknowledged sends of the same shape, measured in the same run for comparison. */
async function plainSends(ctx: ScenarioContext, topic: string, body: Buffer, count: number): Promise<{ msgsPerSec: number; latencyMs: { p50: number; p99: number } }> {
  const { options: o, endpoints, progress } = ctx;
  const producer = new Producer({ endpoints, connectTimeoutMs: CONNECT_TIMEOUT_MS });
  try {
    await producer.start();
    const hist = new Histogram();
    const start = performance.now();
    const { completed, lastAt } = await closedLoop(count, o.concurrency, 1, start + o.durationS * 1000, async () => {
      const t0 = performance.now();
      await producer.send({ topic, body });
      hist.recordMs(performance.now() - t0);
    }, (done) => progress.update('plain sends', done, count));
    progress.done();
    const r = result('produce', completed, (lastAt - start) / 1000, o.size, hist);
    return { msgsPerSec: r.msgsPerSec, latencyMs: { p50: r.latencyMs.p50, p99: r.latencyMs.p99 } };
  } finally {
    await producer.shutdown();
  }
}

/**
 * check: `messages` transactions are left PREPARED by a producer that goes away; once their check
 * time has come, a second producer of the group starts and answers every check-back with COMMIT.
 * Measured: from that producer's start until a consumer has received every committed message.
 */
export async function checkScenario(ctx: ScenarioContext): Promise<BenchResult> {
  const { options: o, endpoints, progress } = ctx;
  const topic = benchName('check');
  const group = benchName('txgroup');
  await createTopic(endpoints, topic, o.queues);
  const total = o.messages;
  const body = randomBytes(o.size);
  const orphaner = new TransactionProducer({ endpoints, group, connectTimeoutMs: CONNECT_TIMEOUT_MS, checker: async () => 'UNKNOWN' });
  await orphaner.start();
  try {
    await closedLoop(total, o.concurrency, 1, Infinity, async () => {
      await orphaner.beginTransaction().send({ topic, body });
    }, (done) => progress.update('orphan', done, total));
  } finally {
    await orphaner.shutdown();
  }
  const orphanedAt = performance.now();
  const hist = new Histogram();
  let delivered = 0;
  let lastAt = 0;
  let start = 0;
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  const consumer = benchConsumer(endpoints, topic, () => {
    const now = performance.now();
    hist.recordMs(now - start);
    delivered++;
    lastAt = now;
    progress.update('check', delivered, total);
    if (delivered >= total) done();
  });
  await consumer.start();
  let checks = 0;
  const resolver = new TransactionProducer({
    endpoints,
    group,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    checker: async () => {
      checks++;
      return 'COMMIT';
    },
  });
  try {
    // Every orphan is due for its first check by now, so what follows is check-back throughput.
    const wait = CHECK_TIMEOUT_MS + 100 - (performance.now() - orphanedAt);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    start = performance.now();
    await resolver.start();
    const limit = o.durationS * 1000;
    await Promise.race([all, new Promise((resolve) => setTimeout(resolve, limit).unref())]);
    progress.done();
    if (delivered === 0) throw new InternalError(`check: no orphaned transaction was resolved within ${o.durationS} s`);
    return result('check', delivered, (lastAt - start) / 1000, o.size, hist, {
      orphaned: total,
      resolved: delivered,
      checksAnswered: checks,
      brokerCheckSettings: CHECK_BROKER_ARGS.join(' '),
      latency: 'from the resolving producer start to the delivery of each committed message',
    });
  } finally {
    await resolver.shutdown();
    await consumer.shutdown();
  }
}
