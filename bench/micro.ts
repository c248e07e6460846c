/**
 * `npm run bench:micro`: tinybench micro-benchmarks of the hot paths, in-process, no network.
 *   frame codec      encode a SEND frame (1 message) / decode it with FrameDecoder
 *   record codec     encodeRecord (layout + CRC32 of a 1 KiB record) / decodeRecord
 *   commit-log       append + durable of 64 x 1 KiB records (async flush: write only; sync: one O_DSYNC write)
 *   consume queue    readEntries of 32 entries from the in-memory tail / from the queue file
 * Prints a table (ops/s, mean and p99 per op). Not part of `npm test`; asserts nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import { Command } from '../src/protocol/commands.js';
import { encodeFrame } from '../src/protocol/frame.js';
import { FrameDecoder } from '../src/protocol/frame-decoder.js';
import { CommitLog } from '../src/storage/commit-log.js';
import { ConsumeQueue } from '../src/storage/consume-queue.js';
import { decodeRecord, encodeRecord, encodeUnstampedRecords, stampRecord } from '../src/common/record-codec.js';
import { RecordType, type RecordInput } from '../src/common/record.js';

const SIZE = 1024;
const body = Buffer.alloc(SIZE, 7);
const dirs: string[] = [];
const tmp = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), 'halfmq-micro-'));
  dirs.push(d);
  return d;
};

const sendHeader = {
  c: Command.SEND,
  i: 12345,
  f: 0,
  d: { messages: [{ t: 'orders', id: '0A0B0C0D0E0F101112131415161718191A1B', n: SIZE, b: Date.now() }] },
};
const frameBytes = Buffer.concat(encodeFrame(sendHeader, body));
const decoder = new FrameDecoder();

const record: RecordInput = {
  type: RecordType.NORMAL,
  topic: 'orders',
  queueId: 3,
  msgId: '0A0B0C0D0E0F101112131415161718191A1B',
  tag: 'created',
  keys: [],
  properties: {},
  body,
  bornTimestamp: Date.now(),
  reconsumeTimes: 0,
};
const encodedRecord = encodeRecord(record, 42, Date.now());
const unstamped = encodeUnstampedRecords([record]);

async function main(): Promise<void> {
  const bench = new Bench({ time: 700, warmupTime: 200 });
  bench
    .add('frame: encode SEND (1 x 1 KiB)', () => {
      encodeFrame(sendHeader, body);
    })
    .add('frame: decode SEND (1 x 1 KiB)', () => {
      decoder.push(frameBytes);
    })
    .add('record: encode + CRC32 (1 KiB)', () => {
      encodeRecord(record, 42, 1_700_000_000_000);
    })
    .add('record: decode (1 KiB)', () => {
      decodeRecord(encodedRecord, 0);
    })
    // What the broker does with a record a producer sent as bytes (SEND `records`), against
    // encode + CRC above: check the framing (no crc), then stamp the header and the crc in place.
    .add('record: parse + stamp + CRC32 (1 KiB, SEND records)', () => {
      decodeRecord(unstamped, -1, 0, false, false);
      stampRecord(unstamped, RecordType.NORMAL, 3, 42, 1_700_000_000_000);
    });

  const records = Array.from({ length: 64 }, () => encodeRecord(record, 1, Date.now()));
  for (const flush of ['async', 'sync'] as const) {
    const dir = await tmp();
    const log = await CommitLog.open<number>({ dir, segmentSize: 1024 ** 3, flush, flushIntervalMs: 1000 }, () => undefined);
    bench.add(`commit-log: append 64 x 1 KiB, ${flush === 'sync' ? 'O_DSYNC write (sync)' : 'write only (async)'}`, async () => {
      await log.append(records, () => 0).durable;
    });
    closers.push(() => log.close());
  }

  const cqRoot = await tmp();
  const cq = new ConsumeQueue(cqRoot, 'orders', 0, 300_000);
  for (let i = 0; i < 200_000; i++) cq.put(i, i * 1100, 1100, 7);
  const memOnly = new ConsumeQueue(await tmp(), 'orders', 1, 300_000);
  for (let i = 0; i < 1_000; i++) memOnly.put(i, i * 1100, 1100, 7);
  await cq.writePending();
  let at = 0;
  bench
    .add('consume-queue: 32 entries from the file', async () => {
      at = (at + 4099) % (200_000 - 32);
      await cq.readEntries(at, 32);
    })
    .add('consume-queue: 32 entries from memory', async () => {
      await memOnly.readEntries(900, 32);
    });
  closers.push(() => cq.close(), () => memOnly.close());

  await bench.run();
  const rows = bench.tasks.map((t) => {
    const r = t.result as { state?: string; latency?: { mean: number; p99: number }; throughput?: { mean: number } } | undefined;
    return {
      benchmark: t.name,
      'ops/s': r?.throughput ? Math.round(r.throughput.mean).toLocaleString('en-US') : 'n/a',
      'mean µs': r?.latency ? (r.latency.mean * 1000).toFixed(2) : 'n/a',
      'p99 µs': r?.latency ? (r.latency.p99 * 1000).toFixed(2) : 'n/a',
    };
  });
  console.table(rows);
  if (process.argv.includes('--json')) console.log(JSON.stringify(rows));
}

const closers: (() => Promise<void>)[] = [];
try {
  await main();
} finally {
  for (const close of closers) await close().catch(() => undefined);
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}
