import { appendFile, open, stat, truncate } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { Producer, SimpleConsumer } from '../../src/index.js';
import type { ReceivedMessage } from '../../src/index.js';
import { removeDir, startBrokerProcess, tempDir, uniqueName } from '../helpers/broker-process.js';
import type { BrokerProcess } from '../helpers/broker-process.js';
import { dataEnd, lastSegment, segmentFiles } from '../helpers/segment-files.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

async function started(dataDir: string): Promise<BrokerProcess> {
  const b = await startBrokerProcess({ dataDir, args: ['--flush', 'sync', '--segment-size', String(64 * 1024)] });
  cleanup.push(() => b.kill9());
  return b;
}

async function sendAll(endpoints: string, topic: string, n: number): Promise<string[]> {
  const producer = new Producer({ endpoints });
  await producer.start();
  try {
    const bodies = Array.from({ length: n }, (_, i) => `${topic}-body-${i}-${'x'.repeat(i % 300)}`);
    await Promise.all(bodies.map((body) => producer.send({ topic, body })));
    return bodies;
  } finally {
    await producer.shutdown();
  }
}

async function consumeAll(endpoints: string, topic: string, expected: number, idleMs = 1500): Promise<ReceivedMessage[]> {
  const consumer = new SimpleConsumer({ endpoints, group: uniqueName('g'), subscriptions: { [topic]: '*' } });
  await consumer.start();
  const got: ReceivedMessage[] = [];
  try {
    for (;;) {
      const batch = await consumer.receive(256, got.length >= expected ? 300 : idleMs);
      if (batch.length === 0) break;
      got.push(...batch);
      await consumer.ack(batch);
    }
  } finally {
    await consumer.shutdown();
  }
  return got;
}

describe('durability', () => {
  it('serves every message acknowledged under sync flush after kill -9, bodies intact', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const topic = uniqueName('crash');
    let broker = await started(dataDir);
    const bodies = await sendAll(broker.endpoints, topic, 600);
    await broker.kill9();
    // 600 messages span several 64 KiB segments: each but the tail ends where its data does.
    const files = await segmentFiles(dataDir);
    expect(files.length).toBeGreaterThan(1);
    for (const file of files.slice(0, -1)) expect((await stat(file)).size).toBe(await dataEnd(file));

    broker = await started(dataDir);
    expect(broker.stderr()).toMatch(/recovered after crash/);
    const got = await consumeAll(broker.endpoints, topic, bodies.length);
    expect(got.map((m) => m.body.toString()).sort()).toEqual([...bodies].sort());

    // The log keeps working after recovery and survives a second crash.
    const more = await sendAll(broker.endpoints, topic, 50);
    await broker.kill9();
    broker = await started(dataDir);
    const again = await consumeAll(broker.endpoints, topic, bodies.length + more.length);
    expect(again.map((m) => m.body.toString()).sort()).toEqual([...bodies, ...more].sort());
  });

  it('keeps every send acknowledged before a kill -9 that lands mid-load, across segment rolls', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const topic = uniqueName('midload');
    let broker = await started(dataDir);
    // Short timeouts: after the kill, sends retried against the dead broker give up quickly.
    const producer = new Producer({ endpoints: broker.endpoints, requestTimeoutMs: 2_000, connectTimeoutMs: 300 });
    await producer.start();
    const acked: string[] = [];
    const sent: string[] = [];
    let stop = false;
    // 64 sends in flight, each lane one after another: several write rounds are on the disk when the broker dies.
    const lane = async (l: number): Promise<void> => {
      for (let i = 0; !stop && i < 200; i++) {
        const body = `${topic}-${l}-${i}-${'y'.repeat((l * 7 + i) % 500)}`;
        sent.push(body);
        try {
          await producer.send({ topic, body });
          acked.push(body);
        } catch {
          return; // the broker is gone
        }
      }
    };
    const lanes = Array.from({ length: 64 }, (_, l) => lane(l));
    const deadline = Date.now() + 10_000;
    while (acked.length < 2_000 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    await broker.kill9();
    stop = true;
    await Promise.all(lanes);
    await producer.shutdown();
    expect(acked.length).toBeGreaterThanOrEqual(2_000);
    expect((await segmentFiles(dataDir)).length).toBeGreaterThan(10); // 64 KiB segments: many rolls

    broker = await started(dataDir);
    const got = (await consumeAll(broker.endpoints, topic, acked.length)).map((m) => m.body.toString());
    const present = new Set(got);
    expect(acked.filter((b) => !present.has(b))).toEqual([]); // nothing acknowledged is lost
    const known = new Set(sent);
    expect(got.filter((b) => !known.has(b))).toEqual([]); // nothing arrives that was not sent, bodies intact
    expect(new Set(got).size).toBe(got.length); // and nothing twice
  });

  it('truncates garbage after the last record, keeps every earlier message, and says so', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const topic = uniqueName('garbage');
    let broker = await started(dataDir);
    const bodies = await sendAll(broker.endpoints, topic, 100);
    await broker.kill9();
    const segment = await lastSegment(dataDir);
    const end = await dataEnd(segment);
    // Garbage right after the data (a torn write into preallocated space) and at the file's end.
    const garbage = Buffer.from('this is not a record, it is garbage from a torn write'.repeat(3));
    const fh = await open(segment, 'r+');
    await fh.write(garbage, 0, garbage.length, end);
    await fh.close();
    await appendFile(segment, garbage);

    broker = await started(dataDir);
    expect(broker.stderr()).toMatch(new RegExp(`torn tail at offset ${Number(segment.slice(-20)) + end}`));
    expect((await stat(segment)).size).toBe(end);
    const got = await consumeAll(broker.endpoints, topic, bodies.length);
    expect(got.map((m) => m.body.toString()).sort()).toEqual([...bodies].sort());
  });

  it('drops a record cut in half and keeps all before it', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const topic = uniqueName('cut');
    let broker = await started(dataDir);
    const producer = new Producer({ endpoints: broker.endpoints });
    await producer.start();
    const bodies: string[] = [];
    for (let i = 0; i < 40; i++) {
      bodies.push(`cut-${i}`);
      await producer.send({ topic, body: `cut-${i}` }); // one at a time: the last one is last in the log
    }
    await producer.shutdown();
    await broker.kill9();
    const segment = await lastSegment(dataDir);
    await truncate(segment, (await dataEnd(segment)) - 7);

    broker = await started(dataDir);
    expect(broker.stderr()).toMatch(/torn tail/);
    const got = await consumeAll(broker.endpoints, topic, 39);
    expect(got.map((m) => m.body.toString()).sort()).toEqual(bodies.slice(0, 39).sort());
  });

  it('stops cleanly on Ctrl-C (SIGINT), exit 0', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const broker = await started(dataDir);
    expect(await broker.stop('SIGINT')).toBe(0);
    expect(broker.stderr()).toMatch(/received SIGINT, closing the broker/);
    expect(broker.stderr()).toMatch(/broker closed/);
  });

  it('stops cleanly on SIGTERM (exit 0) and restarts without recovery work', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const topic = uniqueName('clean');
    let broker = await started(dataDir);
    const bodies = await sendAll(broker.endpoints, topic, 200);
    expect(await broker.stop()).toBe(0);
    broker = await started(dataDir);
    expect(broker.stderr()).toMatch(/clean shutdown/);
    const got = await consumeAll(broker.endpoints, topic, bodies.length);
    expect(got).toHaveLength(200);
  });
});
