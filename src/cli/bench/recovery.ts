import { randomBytes } from 'node:crypto';
import { Producer } from '../../client/producer.js';
import { SimpleConsumer } from '../../client/simple-consumer.js';
import { InternalError } from '../../common/errors.js';
import { startBrokerProcess } from '../broker-process.js';
import type { BrokerProcess } from '../broker-process.js';
import { Histogram } from './histogram.js';
import { benchName, closedLoop, createTopic, result } from './scenarios.js';
import type { BenchResult, ScenarioContext } from './scenarios.js';

/** Record bytes around a body: the fixed header plus topic and id (see common/record-codec.ts). */
const RECORD_OVERHEAD = 120;

/**
 * recovery: write `logBytes` of commit log, `kill -9` the broker, restart it on the same data
 * directory and time spawn → listening (recovery included), then check a message is readable.
 */
export async function recovery(ctx: ScenarioContext, broker: BrokerProcess, restart: (b: BrokerProcess) => Promise<BrokerProcess>): Promise<{ result: BenchResult; broker: BrokerProcess }> {
  const { options: o, endpoints, progress } = ctx;
  const topic = benchName('recovery');
  await createTopic(endpoints, topic, o.queues);
  const count = Math.max(1, Math.ceil(o.logBytes / (o.size + RECORD_OVERHEAD)));
  const producer = new Producer({ endpoints, connectTimeoutMs: 10_000 });
  const body = randomBytes(o.size);
  const fillStart = performance.now();
  try {
    await producer.start();
    await closedLoop(count, o.concurrency, o.batch, Infinity, async (n) => {
      await producer.sendBatch(Array.from({ length: n }, () => ({ topic, body })));
    }, (done) => progress.update('fill', done, count));
  } finally {
    await producer.shutdown();
  }
  const fillSeconds = (performance.now() - fillStart) / 1000;
  progress.done();
  await broker.kill9();
  const restarted = await restart(broker);
  const log = restarted.log();
  const opened = /storage opened \(([^)]*)\): (\d+) records checked, (\d+) re-dispatched, (\d+) bytes truncated in (\d+) ms/.exec(log);
  // The restarted broker serves what was acknowledged before the kill.
  const consumer = new SimpleConsumer({ endpoints: restarted.endpoints, group: benchName('group'), subscriptions: { [topic]: '*' } });
  await consumer.start();
  const firstRead = performance.now();
  const msgs = await consumer.receive(1, 10_000);
  const firstReadMs = performance.now() - firstRead;
  await consumer.shutdown();
  if (msgs.length === 0) throw new InternalError('recovery: the restarted broker returned no message of the filled topic');
  const hist = new Histogram();
  hist.recordMs(restarted.startMs);
  const r = result('recovery', count, restarted.startMs / 1000, o.size + RECORD_OVERHEAD, hist, {
    logBytes: count * (o.size + RECORD_OVERHEAD),
    fillSeconds: Math.round(fillSeconds * 1000) / 1000,
    restartMs: Math.round(restarted.startMs),
    storage: opened ? { how: opened[1], recordsChecked: Number(opened[2]), redispatched: Number(opened[3]), truncatedBytes: Number(opened[4]), storeOpenMs: Number(opened[5]) } : 'not reported',
    firstPullMs: Math.round(firstReadMs * 10) / 10,
    note: 'seconds/latency = one restart (spawn to listening) after kill -9; msgs/s and MB/s = log size over restart time',
  });
  return { result: r, broker: restarted };
}

export function restartOnSameDir(flush: 'sync' | 'async', args: string[]): (b: BrokerProcess) => Promise<BrokerProcess> {
  return (b) => startBrokerProcess({ flush, dataDir: b.dataDir, args });
}
