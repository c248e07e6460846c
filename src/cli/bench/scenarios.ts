import { randomBytes } from 'node:crypto';
import { Admin } from '../../client/admin.js';
import { Producer } from '../../client/producer.js';
import { PushConsumer } from '../../client/push-consumer.js';
import { SimpleConsumer } from '../../client/simple-consumer.js';
import type { Message, ReceivedMessage } from '../../common/message.js';
import { InternalError } from '../../common/errors.js';
import { Histogram } from './histogram.js';
import type { BenchOptions } from './options.js';
import type { Progress } from './progress.js';

/**
 * The load scenarios of `halfmq bench`. Each runs against `endpoints`, bounded by a message count
 * and by `durationS`, and returns the measured phase only (set-up, warm-up and pre-fill excluded).
 */
export interface BenchResult {
  scenario: string;
  messages: number;
  seconds: number;
  msgsPerSec: number;
  mbPerSec: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** scenario-specific details (kept out of the contract fields above) */
  details?: Record<string, unknown>;
}

export interface ScenarioContext {
  endpoints: string;
  options: BenchOptions;
  progress: Progress;
}

const CONNECT_TIMEOUT_MS = 10_000;
/**
 * produce, e2e and tx warm up at the measured load for this long, not for a count: code that runs
 * once per request or per write round (not per message) reaches V8's optimizing tier only after
 * seconds of load, and e2e's first second ran 10-50x slower (JIT tiers, the consumer's fetch
 * pipeline, heap growth). After a 2,000-send warm-up, produce measured 62-64k msgs/s over 100,000
 * sends and 83k over 400,000 (two runs each): the short run was mostly measuring the warm-up.
 */
export const WARMUP_MS = 2_000;

export function benchName(kind: string): string {
  return `bench-${kind}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export function result(scenario: string, messages: number, seconds: number, bytesPerMessage: number, hist: Histogram, details?: Record<string, unknown>): BenchResult {
  const s = Math.max(seconds, 1e-9);
  const out: BenchResult = {
    scenario,
    messages,
    seconds: round(seconds, 3),
    msgsPerSec: Math.round(messages / s),
    mbPerSec: round((messages * bytesPerMessage) / s / (1024 * 1024), 2),
    latencyMs: hist.summaryMs(),
  };
  if (details !== undefined) out.details = details;
  return out;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** A push consumer as the e2e and check scenarios measure with: a new group, many handlers in flight. */
export function benchConsumer(endpoints: string, topic: string, handler: (msg: ReceivedMessage) => void): PushConsumer {
  return new PushConsumer({
    endpoints,
    group: benchName('group'),
    subscriptions: { [topic]: '*' },
    concurrency: 1024,
    pollWaitMs: 1_000,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    handler: async (msg) => handler(msg),
  });
}

export async function createTopic(endpoints: string, name: string, queues: number): Promise<void> {
  const admin = new Admin({ endpoints, connectTimeoutMs: CONNECT_TIMEOUT_MS });
  try {
    await admin.createTopic(name, { queues });
  } finally {
    await admin.shutdown();
  }
}

/**
 * Runs `concurrency` workers that each take up to `batch` of the `total` units and await `work`,
 * until all are done or the deadline passes. The first failure stops everything and is thrown.
 * Returns how many units completed and when (performance.now()) the last one did.
 */
export async function closedLoop(
  total: number,
  concurrency: number,
  batch: number,
  deadline: number,
  work: (n: number, index: number) => Promise<void>,
  onDone: (completed: number) => void = () => undefined,
): Promise<{ completed: number; lastAt: number }> {
  let next = 0;
  let completed = 0;
  let lastAt = performance.now();
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < total && performance.now() < deadline) {
      const n = Math.min(batch, total - next);
      const index = next;
      next += n;
      try {
        await work(n, index);
      } catch (err) {
        failure ??= err;
        return;
      }
      completed += n;
      lastAt = performance.now();
      onDone(completed);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, Math.ceil(total / batch))) }, worker));
  if (failure !== undefined) throw failure;
  return { completed, lastAt };
}

function makeMessages(topic: string, body: Buffer, n: number): Message[] {
  return Array.from({ length: n }, () => ({ topic, body }));
}

/** Sends `count` messages as fast as `concurrency` x `batch` allow (no measurement): warm-up and pre-fill. */
export async function fill(producer: Producer, topic: string, body: Buffer, count: number, progress: Progress, label: string): Promise<void> {
  const batch = 64;
  await closedLoop(count, 16, batch, Infinity, async (n) => {
    await producer.sendBatch(makeMessages(topic, body, n));
  }, (done) => progress.update(label, done, count));
}

/** produce: acknowledged sends, `concurrency` requests in flight, `batch` messages per request. */
export async function produce(ctx: ScenarioContext): Promise<BenchResult> {
  const { options: o, endpoints, progress } = ctx;
  const topic = benchName('produce');
  await createTopic(endpoints, topic, o.queues);
  const producer = new Producer({ endpoints, connectTimeoutMs: CONNECT_TIMEOUT_MS });
  try {
    await producer.start();
    const body = randomBytes(o.size);
    // Warm-up: JIT, connection buffers, the segment file's first pages. Not measured.
    await closedLoop(
      Number.MAX_SAFE_INTEGER,
      o.concurrency,
      o.batch,
      performance.now() + WARMUP_MS,
      (n) => (n === 1 ? producer.send({ topic, body }).then(() => undefined) : producer.sendBatch(makeMessages(topic, body, n)).then(() => undefined)),
      (done) => progress.update('warm-up', done, done),
    );
    progress.done();
    const hist = new Histogram();
    const start = performance.now();
    const { completed, lastAt } = await closedLoop(
      o.messages,
      o.concurrency,
      o.batch,
      start + o.durationS * 1000,
      async (n) => {
        const t0 = performance.now();
        if (n === 1) await producer.send({ topic, body });
        else await producer.sendBatch(makeMessages(topic, body, n));
        hist.recordMs(performance.now() - t0);
      },
      (done) => progress.update('produce', done, o.messages),
    );
    progress.done();
    return result('produce', completed, (lastAt - start) / 1000, o.size, hist, {
      size: o.size,
      concurrency: o.concurrency,
      batch: o.batch,
      warmupSeconds: WARMUP_MS / 1000,
      latency: o.batch === 1 ? 'per send' : 'per sendBatch request',
    });
  } finally {
    await producer.shutdown();
  }
}

/**
 * consume: drain a pre-filled topic with pulls of up to `batch` messages, `concurrency` pulls in
 * flight. The first third of the topic warms up (unmeasured), as produce, e2e and tx do: a drain of
 * 200,000 from cold measured 216k msgs/s where the same drain of 400,000 measured 305-327k.
 */
export async function consume(ctx: ScenarioContext): Promise<BenchResult> {
  const { options: o, endpoints, progress } = ctx;
  const topic = benchName('consume');
  const warmup = Math.ceil(o.messages / 2);
  await createTopic(endpoints, topic, o.queues);
  const producer = new Producer({ endpoints, connectTimeoutMs: CONNECT_TIMEOUT_MS });
  try {
    // The warm-up's last pulls may take up to a pull each past it: spare messages so that the
    // measured drain still finds all of its own.
    await fill(producer, topic, randomBytes(o.size), o.messages + warmup + o.concurrency * o.batch, progress, 'fill');
  } finally {
    await producer.shutdown();
  }
  const consumer = new SimpleConsumer({ endpoints, group: benchName('group'), subscriptions: { [topic]: '*' }, connectTimeoutMs: CONNECT_TIMEOUT_MS });
  await consumer.start();
  try {
    const acks: Promise<void>[] = [];
    /** Receives `count` messages (more by at most a pull each), or until `deadline`; acks them all. */
    const drain = async (count: number, deadline: number, label: string, hist?: Histogram): Promise<{ received: number; lastAt: number }> => {
      let received = 0;
      let lastAt = performance.now();
      const loop = async (): Promise<void> => {
        while (received < count && performance.now() < deadline) {
          const t0 = performance.now();
          const msgs: ReceivedMessage[] = await consumer.receive(o.batch, 1_000);
          if (msgs.length === 0) continue;
          hist?.recordMs(performance.now() - t0);
          received += msgs.length;
          lastAt = performance.now();
          acks.push(consumer.ack(msgs));
          progress.update(label, received, count);
        }
      };
      await Promise.all(Array.from({ length: o.concurrency }, loop));
      progress.done();
      return { received, lastAt };
    };
    await drain(warmup, performance.now() + o.durationS * 1000, 'warm-up');
    const hist = new Histogram();
    const start = performance.now();
    const { received, lastAt } = await drain(o.messages, start + o.durationS * 1000, 'consume', hist);
    await Promise.all(acks);
    return result('consume', Math.min(received, o.messages), (lastAt - start) / 1000, o.size, hist, {
      size: o.size,
      warmupMessages: warmup,
      pullsInFlight: o.concurrency,
      pullBatch: o.batch,
      latency: 'per PULL round trip',
    });
  } finally {
    await consumer.shutdown();
  }
}

/**
 * e2e: send-to-handler latency through a PushConsumer. At saturation (`concurrency` sends in flight)
 * or at a fixed `rate`; with a rate, each message is stamped with its scheduled send time so a
 * stalled sender shows up as latency (no coordinated omission).
 */
export async function e2e(ctx: ScenarioContext): Promise<BenchResult> {
  const { options: o, endpoints, progress } = ctx;
  const topic = benchName('e2e');
  await createTopic(endpoints, topic, o.queues);
  const hist = new Histogram();
  // The same messages to their send's acknowledgement: the durable produce path alone, so a tail
  // reads as the producer's (write rounds, the disk) or the consumer's (the rest of hist).
  const acked = new Histogram();
  const total = o.messages;
  let received = 0;
  let lastAt = 0;
  let expected = total;
  let allReceived!: () => void;
  const everything = new Promise<void>((resolve) => (allReceived = resolve));
  // Warm-up (not measured), at the measured load: first segment file, JIT, connection buffers,
  // heap. Stamped NaN; how many it sent is known when it ends.
  let warmSent = Infinity;
  let warmReceived = 0;
  let warmedUp!: () => void;
  const warm = new Promise<void>((resolve) => (warmedUp = resolve));
  const consumer = benchConsumer(endpoints, topic, (msg) => {
    const now = performance.now();
    const sentAt = msg.body.readDoubleLE(0);
    if (Number.isNaN(sentAt)) {
      if (++warmReceived >= warmSent) warmedUp();
      return;
    }
    hist.recordMs(now - sentAt);
    received++;
    lastAt = now;
    progress.update('e2e', received, total);
    if (received >= expected) allReceived();
  });
  await consumer.start();
  const producer = new Producer({ endpoints, connectTimeoutMs: CONNECT_TIMEOUT_MS });
  const template = randomBytes(Math.max(8, o.size));
  template.writeDoubleLE(0, 0);
  const stamped = (at: number): Buffer => {
    const b = Buffer.allocUnsafe(template.length);
    template.copy(b);
    b.writeDoubleLE(at, 0);
    return b;
  };
  try {
    await producer.start();
    const warmEnd = performance.now() + WARMUP_MS;
    const warmOne = async (): Promise<void> => {
      await producer.send({ topic, body: stamped(NaN) });
    };
    warmSent =
      o.rate === undefined
        ? (await closedLoop(Number.MAX_SAFE_INTEGER, o.concurrency, 1, warmEnd, warmOne)).completed
        : await paced(Number.MAX_SAFE_INTEGER, o.rate, o.concurrency * 16, warmEnd, warmOne);
    progress.update('e2e warm-up', warmSent, warmSent);
    if (warmReceived >= warmSent) warmedUp();
    await Promise.race([warm, new Promise((resolve) => setTimeout(resolve, 30_000).unref())]);
    const start = performance.now();
    const deadline = start + o.durationS * 1000;
    let sent = 0;
    if (o.rate === undefined) {
      const r = await closedLoop(total, o.concurrency, o.batch, deadline, async (n) => {
        const now = performance.now();
        if (n === 1) await producer.send({ topic, body: stamped(now) });
        else await producer.sendBatch(Array.from({ length: n }, () => ({ topic, body: stamped(now) })));
        acked.recordMs(performance.now() - now);
      });
      sent = r.completed;
    } else {
      sent = await paced(total, o.rate, o.concurrency * 16, deadline, (scheduledAt) => producer.send({ topic, body: stamped(scheduledAt) }), (scheduledAt) =>
        acked.recordMs(performance.now() - scheduledAt),
      );
    }
    expected = sent; // time may have run out before all were sent
    if (received >= expected) allReceived();
    // Stragglers get a little longer than the run itself was allowed.
    await Promise.race([everything, new Promise((resolve) => setTimeout(resolve, 10_000 + Math.max(0, deadline - performance.now())).unref())]);
    progress.done();
    const offered = o.rate === undefined ? 'saturation' : `${o.rate} msgs/s`;
    return result('e2e', received, (lastAt - start) / 1000, o.size, hist, {
      size: o.size,
      rate: offered,
      sent,
      concurrency: o.concurrency,
      warmupSeconds: WARMUP_MS / 1000,
      latency: 'send call (or scheduled send time) to handler',
      sendAckMs: acked.summaryMs(),
    });
  } finally {
    await producer.shutdown();
    await consumer.shutdown();
  }
}

/**
 * Open loop: starts send number i at start + i/rate whatever the previous ones are doing, with at
 * most `maxOutstanding` unanswered (beyond that the sender waits, and the late start shows up in the
 * latency of what it sends next). `onAcked` hears of each acknowledged send. Returns how many were sent.
 */
async function paced(
  total: number,
  rate: number,
  maxOutstanding: number,
  deadline: number,
  send: (scheduledAt: number) => Promise<unknown>,
  onAcked?: (scheduledAt: number) => void,
): Promise<number> {
  const start = performance.now();
  let i = 0;
  let outstanding = 0;
  let failure: unknown;
  let wake: (() => void) | undefined;
  // Two plain callbacks per send, no promise chain or set entry: at 29,000 sends/s the bench's
  // own allocations are part of the client's GC pauses, which show up in the latency it measures.
  const settled = (): void => {
    outstanding--;
    const w = wake;
    wake = undefined;
    w?.();
  };
  const failed = (err: unknown): void => {
    failure ??= err;
    settled();
  };
  // Sends scheduled before the deadline go out even when the tick that finds them due comes after it.
  const last = Math.min(total, Math.ceil(((deadline - start) / 1000) * rate));
  while (i < last && failure === undefined) {
    const now = performance.now();
    const due = Math.min(last, Math.floor(((now - start) / 1000) * rate) + 1);
    while (i < due && outstanding < maxOutstanding) {
      const scheduledAt = start + (i / rate) * 1000;
      outstanding++;
      i++;
      send(scheduledAt).then(onAcked === undefined ? settled : () => (onAcked(scheduledAt), settled()), failed);
    }
    if (outstanding >= maxOutstanding) await new Promise<void>((resolve) => (wake = resolve));
    else await paceTick(start + (i / rate) * 1000);
  }
  while (outstanding > 0) await new Promise<void>((resolve) => (wake = resolve));
  if (failure !== undefined) throw failure;
  return i;
}

/**
 * Waits until `nextAt` (performance.now() time) but at most 1 ms: paced loops look at the clock in
 * 1 ms ticks. A coarser one sends in bursts, and the wait for the burst counts as latency (measured
 * from the scheduled time): 5 ms ticks added ~20 ms to e2e p99 at 10,000 msgs/s.
 */
export function paceTick(nextAt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(1, nextAt - performance.now()))));
}

export function assertCompleted(r: BenchResult, wanted: number): void {
  if (r.messages === 0 && wanted > 0) throw new InternalError(`${r.scenario}: nothing completed within the time limit`);
}
