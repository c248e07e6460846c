import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Histogram } from './histogram.js';
import { onInterrupt } from './interrupt.js';
import { paceTick, result } from './scenarios.js';
import type { BenchResult, ScenarioContext } from './scenarios.js';

/** The append phase: 256 KiB appends, each followed by fdatasync, up to this many bytes. */
const APPEND_PIECE = 256 * 1024;
const APPEND_MAX_BYTES = 64 * 1024 * 1024;
const APPEND_MAX_MS = 3_000;
/** The fdatasync phase: 1 KiB appends one at a time, each followed by fdatasync. */
const SYNC_PIECE = 1024;
const SYNC_MAX = 1_000;
const SYNC_MAX_MS = 2_000;
/** Zero-fill step for the group-commit file, as the commit log preallocates (storage/segment.ts). */
const ZERO_PIECE = 1024 * 1024;
/** Bytes written at once by the group-commit phase; a longer round is written in pieces of this. */
const SOURCE_BYTES = 4 * 1024 * 1024;

/**
 * disk: what the file system under `--dir` allows a durable broker, measured with no broker at all,
 * so the other scenarios can be read against it:
 *
 *   - append: 256 KiB appends, each followed by fdatasync: the disk's throughput for durable writes.
 *   - fdatasync: a 1 KiB append and its fdatasync, one at a time: the floor of a lone durable send.
 *   - group commit (the result): records of `--size` arrive at `--rate` in 1 ms ticks, as the e2e
 *     scenario's sender sends them. One O_DSYNC write at a time takes every record that arrived while
 *     the previous one ran, in place over zero-filled space, which is how the commit log writes in
 *     sync mode. A record's latency runs from its scheduled time to its write's return: no durable
 *     send can be acknowledged sooner at that rate, so e2e latency at the same rate sits above it.
 */
export async function disk(ctx: ScenarioContext): Promise<BenchResult> {
  const { options: o, progress } = ctx;
  const rate = o.rate!;
  const dir = o.dir ?? os.tmpdir();
  const root = await mkdtemp(path.join(dir, 'halfmq-disk-'));
  // Up to 2 GiB of files: stopped half way, the run removes them all the same.
  const stopOnInterrupt = onInterrupt(() => rm(root, { recursive: true, force: true }));
  try {
    const appendMBps = await appendThroughput(path.join(root, 'append'), progress);
    const fdatasync1KiB = await syncLatency(path.join(root, 'fdatasync'), progress);
    const group = await groupCommit(path.join(root, 'group-commit'), o.messages, o.size, rate, o.durationS, progress);
    return result('disk', group.written, group.seconds, o.size, group.hist, {
      dir,
      size: o.size,
      rate: `${rate} records/s`,
      writes: group.writes,
      appendMBps,
      fdatasync1KiB,
      latency: 'group commit: scheduled arrival of a record to the return of the O_DSYNC write that holds it',
    });
  } finally {
    stopOnInterrupt();
    await rm(root, { recursive: true, force: true });
  }
}

async function appendThroughput(file: string, progress: ScenarioContext['progress']): Promise<number> {
  const handle = await open(file, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC);
  try {
    const piece = randomBytes(APPEND_PIECE);
    const start = performance.now();
    let bytes = 0;
    while (bytes < APPEND_MAX_BYTES && performance.now() - start < APPEND_MAX_MS) {
      await handle.write(piece, 0, piece.length, bytes);
      await handle.datasync();
      bytes += piece.length;
      progress.update('append', bytes, APPEND_MAX_BYTES);
    }
    const seconds = (performance.now() - start) / 1000;
    return Math.round((bytes / (1024 * 1024) / seconds) * 10) / 10;
  } finally {
    await handle.close();
  }
}

async function syncLatency(file: string, progress: ScenarioContext['progress']): Promise<{ p50: number; p99: number }> {
  const handle = await open(file, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC);
  try {
    const piece = randomBytes(SYNC_PIECE);
    const hist = new Histogram();
    const start = performance.now();
    for (let i = 0; i < SYNC_MAX && performance.now() - start < SYNC_MAX_MS; i++) {
      const t0 = performance.now();
      await handle.write(piece, 0, piece.length, i * piece.length);
      await handle.datasync();
      hist.recordMs(performance.now() - t0);
      progress.update('fdatasync', i + 1, SYNC_MAX);
    }
    const { p50, p99 } = hist.summaryMs();
    return { p50, p99 };
  } finally {
    await handle.close();
  }
}

interface GroupCommit {
  written: number;
  writes: number;
  seconds: number;
  hist: Histogram;
}

async function groupCommit(file: string, total: number, size: number, rate: number, durationS: number, progress: ScenarioContext['progress']): Promise<GroupCommit> {
  await zeroFill(file, total * size, progress);
  const handle = await open(file, constants.O_RDWR | constants.O_DSYNC);
  try {
    const source = randomBytes(Math.max(size, Math.floor(SOURCE_BYTES / size) * size));
    const hist = new Histogram();
    const start = performance.now();
    const deadline = start + durationS * 1000;
    const scheduledAt = (i: number): number => start + (i / rate) * 1000;
    let arrived = 0;
    let written = 0;
    let writes = 0;
    let lastAt = start;
    let writer: Promise<void> | undefined;
    // Everything that arrived while the previous write ran goes in the next one.
    const writeAll = async (): Promise<void> => {
      while (written < arrived) {
        const from = written;
        const to = arrived;
        for (let at = from * size; at < to * size; ) {
          const n = Math.min(source.length, to * size - at);
          const { bytesWritten } = await handle.write(source, 0, n, at);
          at += bytesWritten;
        }
        writes++;
        lastAt = performance.now();
        for (let i = from; i < to; i++) hist.recordMs(lastAt - scheduledAt(i));
        written = to;
        progress.update('disk', written, total);
      }
      writer = undefined;
    };
    for (;;) {
      const now = performance.now();
      arrived = Math.min(total, Math.floor(((now - start) / 1000) * rate) + 1);
      if (writer === undefined && written < arrived) writer = writeAll();
      if (arrived >= total || now >= deadline) break;
      await paceTick(scheduledAt(arrived)); // the e2e sender's ticks
    }
    while (writer !== undefined) await writer;
    return { written, writes, seconds: (lastAt - start) / 1000, hist };
  } finally {
    await handle.close();
  }
}

/** Zero-fills and syncs `bytes`, so the measured writes land in place as the commit log's do. */
async function zeroFill(file: string, bytes: number, progress: ScenarioContext['progress']): Promise<void> {
  const handle = await open(file, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC);
  try {
    const zeros = Buffer.alloc(ZERO_PIECE);
    for (let at = 0; at < bytes; at += ZERO_PIECE) {
      await handle.write(zeros, 0, Math.min(ZERO_PIECE, bytes - at), at);
      progress.update('prepare', at, bytes);
    }
    await handle.datasync();
  } finally {
    await handle.close();
  }
}
