import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CommitLog, READ_BLOCK, type RecordLocation } from '../../../src/storage/commit-log.js';
import { decodeRecord, encodeRecord } from '../../../src/common/record-codec.js';
import type { StoredRecord } from '../../../src/common/record.js';
import { rec, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/** The records at `locations`, read the way the store reads a queue: plan, copy each group into one buffer, decode. */
async function readRecords(log: CommitLog<number[]>, locations: RecordLocation[]): Promise<StoredRecord[]> {
  const out = Buffer.alloc(locations.reduce((n, l) => n + l.size, 0));
  let at = 0;
  await Promise.all(
    log.planReads(locations).map((g) => {
      const from = at;
      for (const l of g.locations) at += l.size;
      return log.copyGroup(g, out, from);
    }),
  );
  at = 0;
  return locations.map((l) => {
    const record = decodeRecord(out, l.offset, at);
    at += l.size;
    return record;
  });
}

/**
 * FileHandle.prototype.writev, spied, with actions for the n-th call (1-based): `onIssue(n, fn)`
 * runs `fn` as that write is issued, `hold(n)` keeps it from running until `release(n)`, and
 * `fail(n, ms)` makes it fail with EIO after `ms` without writing.
 */
async function spiedWrites(dir: string) {
  const probe = await open(join(dir, 'probe'), 'w');
  const fileHandle = Object.getPrototypeOf(probe) as { writev: (...args: unknown[]) => Promise<{ bytesWritten: number }> };
  await probe.close();
  const writev = fileHandle.writev;
  const issued = new Map<number, () => void>();
  const gates = new Map<number, { open: Promise<void>; release: () => void }>();
  const failures = new Map<number, number>();
  let calls = 0;
  const spy = vi.spyOn(fileHandle, 'writev').mockImplementation(async function (this: unknown, ...args: unknown[]) {
    const n = ++calls;
    issued.get(n)?.();
    const gate = gates.get(n);
    if (gate !== undefined) await gate.open;
    const failAfter = failures.get(n);
    if (failAfter !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, failAfter));
      throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
    }
    return writev.apply(this, args);
  });
  return {
    spy,
    onIssue(n: number, fn: () => void): void {
      issued.set(n, fn);
    },
    hold(n: number): void {
      let release!: () => void;
      const open = new Promise<void>((resolve) => (release = resolve));
      gates.set(n, { open, release });
    },
    release(n: number): void {
      gates.get(n)!.release();
    },
    fail(n: number, afterMs: number): void {
      failures.set(n, afterMs);
    },
  };
}

/** Resolves once `p` settles or after a few turns of the event loop, telling which. */
async function settlesSoon(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 20 && !settled; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  return settled;
}

async function openLog(segmentSize: number) {
  const dispatched: number[][] = [];
  const log = await CommitLog.open<number[]>({ dir: await dirs.make(), segmentSize, flush: 'sync', flushIntervalMs: 100 }, (payloads) => {
    dispatched.push(...payloads);
  });
  return { log, dispatched };
}

describe('CommitLog', () => {
  it('coalesces reads of nearby records and splits at the size bound and segment edges', async () => {
    const { log, dispatched } = await openLog(4 * 1024 * 1024);
    const small = Array.from({ length: 20 }, (_, i) => encodeRecord(rec({ text: `s${i}` }), i, 1));
    const { offsets, durable } = log.append(small, (o) => o);
    await durable;
    expect(dispatched).toEqual([offsets]);
    const every3 = offsets.map((offset, i) => ({ offset, size: small[i].length })).filter((_, i) => i % 3 === 0);
    const groups = log.planReads(every3);
    expect(groups).toHaveLength(1);
    expect((await readRecords(log, every3)).map((r) => r.body.toString())).toEqual(small.filter((_, i) => i % 3 === 0).map((_, k) => `s${k * 3}`));

    const big = Array.from({ length: 3 }, () => encodeRecord(rec({ body: Buffer.alloc(600 * 1024, 7) }), 0, 1));
    const bigAppend = log.append(big, (o) => o);
    await bigAppend.durable;
    const bigLocs = bigAppend.offsets.map((offset, i) => ({ offset, size: big[i].length }));
    const bigGroups = log.planReads(bigLocs);
    expect(bigGroups.length).toBeGreaterThan(1);
    expect(bigGroups.every((g) => g.length <= READ_BLOCK)).toBe(true);
    expect((await readRecords(log, bigLocs)).map((r) => r.body.length)).toEqual([614400, 614400, 614400]);
    await log.close();
  });

  it('places records at segment start + position, rolling to previousStart + segmentSize', async () => {
    const { log } = await openLog(4096);
    const buf = encodeRecord(rec({ body: Buffer.alloc(1500) }), 0, 1);
    const placed: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { offsets, durable } = log.append([buf], (o) => o);
      await durable;
      placed.push(...offsets);
    }
    const s = buf.length;
    expect(placed).toEqual([0, s, 4096, 4096 + s, 8192]);
    expect(log.segmentList.map((x) => x.start)).toEqual([0, 4096, 8192]);
    const mixed = log.planReads(placed.map((offset) => ({ offset, size: s })));
    expect(mixed.map((g) => g.locations.length)).toEqual([2, 2, 1]);
    expect((await log.readAt(placed[3])).size).toBe(s);
    await log.close();
  });

  it('reads a wholly written block once for the records of every queue in it, and never caches a block still being written', async () => {
    const { log } = await openLog(64 * 1024 * 1024);
    const queues = 8;
    // Interleaved like the queues of one topic: record i belongs to queue i % 8.
    const records = Array.from({ length: 1500 }, (_, i) => encodeRecord(rec({ text: `r${i}`.padEnd(1000, '.') }), i, 1));
    const first = log.append(records, (o) => o);
    await first.durable;
    expect(first.offsets.at(-1)! + records.at(-1)!.length).toBeGreaterThan(READ_BLOCK); // block 0 is full, block 1 is not
    const locs = first.offsets.map((offset, i) => ({ offset, size: records[i]!.length }));
    const read = vi.spyOn(log.segmentList[0]!, 'read');
    const inBlock0 = (i: number): boolean => locs[i]!.offset + locs[i]!.size <= READ_BLOCK;
    for (let q = 0; q < queues; q++) {
      const mine = locs.filter((_, i) => i % queues === q && inBlock0(i));
      const got = await readRecords(log, mine);
      expect(got.map((r) => r.body.toString().replace(/\.+$/, ''))).toEqual(mine.map((l) => `r${locs.indexOf(l)}`));
    }
    // Eight queues' reads of block 0: one read of the block.
    expect(read.mock.calls.filter(([, length]) => length === READ_BLOCK)).toHaveLength(1);
    expect(read).toHaveBeenCalledTimes(1);

    // The part block at the tail is read exactly (all of it here, far from sparse), so what is
    // appended into it later is seen.
    const tailLoc = locs.at(-1)!;
    const block1 = locs.filter((_, i) => !inBlock0(i) && locs[i]!.offset >= READ_BLOCK);
    expect((await readRecords(log, block1)).at(-1)!.body.toString()).toMatch(/^r1499/);
    const more = encodeRecord(rec({ text: 'later' }), 1500, 1);
    const second = log.append([more], (o) => o);
    await second.durable;
    const both = await readRecords(log, [tailLoc, { offset: second.offsets[0]!, size: more.length }]);
    expect(both.map((r) => r.body.toString().slice(0, 5))).toEqual(['r1499', 'later']);
    await log.close();
  });

  it('reads a sparse group exactly instead of its whole block', async () => {
    const { log } = await openLog(64 * 1024 * 1024);
    const records = Array.from({ length: 1200 }, (_, i) => encodeRecord(rec({ text: `s${i}`.padEnd(1000, '.') }), i, 1));
    const { offsets, durable } = log.append(records, (o) => o);
    await durable;
    const read = vi.spyOn(log.segmentList[0]!, 'read');
    // Two records of block 0, far apart: far less than 1/16 of it.
    const two = [0, 500].map((i) => ({ offset: offsets[i]!, size: records[i]!.length }));
    expect((await readRecords(log, two)).map((r) => r.body.toString().slice(0, 4))).toEqual(['s0..', 's500']);
    expect(read.mock.calls.every(([, length]) => (length as number) < READ_BLOCK)).toBe(true);
    await log.close();
  });

  it('starts the next round before answering the last one, so the disk works while the callers run', async () => {
    const { log, dispatched } = await openLog(4 * 1024 * 1024);
    const writes = await spiedWrites(await dirs.make());
    const spy = writes.spy;
    let second: { offsets: number[]; durable: Promise<void> } | undefined;
    // The second append arrives while the first round is on the disk.
    writes.onIssue(1, () => (second = log.append([encodeRecord(rec({ text: 'second' }), 1, 1)], (o) => o)));
    try {
      const first = log.append([encodeRecord(rec({ text: 'first' }), 0, 1)], (o) => o);
      const answered = vi.fn();
      await first.durable.then(answered);
      await second!.durable;
      expect(spy).toHaveBeenCalledTimes(2);
      // The second round's write was issued before the first round's caller heard back.
      expect(spy.mock.invocationCallOrder[1]!).toBeLessThan(answered.mock.invocationCallOrder[0]!);
      expect(dispatched).toEqual([first.offsets, second!.offsets]);
    } finally {
      spy.mockRestore();
    }
    await log.close();
  });
  it('keeps two rounds on the disk at once and answers them in log order when the second lands first', async () => {
    const { log, dispatched } = await openLog(4 * 1024 * 1024);
    const writes = await spiedWrites(await dirs.make());
    try {
      // (A segment's first round is alone on the disk; see the roll test below.)
      await log.append([encodeRecord(rec({ text: 'filler' }), 0, 1)], (o) => o).durable;
      const dataEnd = log.endOffset;
      writes.hold(2);
      const first = log.append([encodeRecord(rec({ text: 'first' }), 0, 1)], (o) => o);
      await new Promise((resolve) => setImmediate(resolve)); // the first round is on the disk
      const second = log.append([encodeRecord(rec({ text: 'second' }), 1, 1)], (o) => o);
      // The second round's write was issued, and lands, while the first is still held.
      await vi.waitFor(() => expect(writes.spy).toHaveBeenCalledTimes(3));
      expect(await settlesSoon(second.durable)).toBe(false);
      expect(dispatched).toHaveLength(1);
      // Its bytes are on the file, but past a gap: the data end does not move over it.
      expect(log.segmentList[0]!.written).toBe(dataEnd);
      writes.release(2);
      await Promise.all([first.durable, second.durable]);
      expect(dispatched.slice(1)).toEqual([first.offsets, second.offsets]);
      expect(log.segmentList[0]!.written).toBe(log.endOffset);
      const locations = [
        { offset: first.offsets[0]!, size: second.offsets[0]! - first.offsets[0]! },
        { offset: second.offsets[0]!, size: log.endOffset - second.offsets[0]! },
      ];
      expect((await readRecords(log, locations)).map((r) => r.body.toString())).toEqual(['first', 'second']);
    } finally {
      writes.spy.mockRestore();
    }
    await log.close();
  });

  it('refuses a round that landed after one that failed: what is acknowledged is a prefix of the log', async () => {
    const { log, dispatched } = await openLog(4 * 1024 * 1024);
    const writes = await spiedWrites(await dirs.make());
    writes.fail(2, 30);
    try {
      await log.append([encodeRecord(rec({ text: 'filler' }), 0, 1)], (o) => o).durable;
      const first = log.append([encodeRecord(rec({ text: 'first' }), 0, 1)], (o) => o);
      await new Promise((resolve) => setImmediate(resolve));
      const second = log.append([encodeRecord(rec({ text: 'second' }), 1, 1)], (o) => o);
      await expect(first.durable).rejects.toThrow(/commit-log write failed/);
      await expect(second.durable).rejects.toThrow(/commit-log write failed/);
      expect(writes.spy).toHaveBeenCalledTimes(3); // the second was on the disk, and landed
      expect(dispatched).toHaveLength(1);
      expect(() => log.append([encodeRecord(rec(), 2, 1)], (o) => o)).toThrow(/commit-log write failed/);
    } finally {
      writes.spy.mockRestore();
    }
    await log.close().catch(() => undefined);
  });

  it('starts a round that opens a segment only once no other is on the disk, and trims the one before to its data', async () => {
    const record = (text: string, i: number) => encodeRecord(rec({ text: text.padEnd(1500, '.') }), i, 1);
    const size = record('x', 0).length;
    const { log, dispatched } = await openLog(size * 2 + 10);
    const writes = await spiedWrites(await dirs.make());
    try {
      const filler = log.append([record('a', 0)], (o) => o);
      await filler.durable;
      writes.hold(2);
      const first = log.append([record('b', 1)], (o) => o); // the rest of segment 0
      await new Promise((resolve) => setImmediate(resolve));
      const second = log.append([record('c', 2)], (o) => o); // opens segment 1
      expect(log.segmentList).toHaveLength(2);
      expect(await settlesSoon(second.durable)).toBe(false);
      expect(writes.spy).toHaveBeenCalledTimes(2); // not issued while the first is held
      writes.release(2);
      await Promise.all([first.durable, second.durable]);
      expect(writes.spy).toHaveBeenCalledTimes(3);
      expect(dispatched).toEqual([filler.offsets, first.offsets, second.offsets]);
      const locations = [filler, first, second].map((a) => ({ offset: a.offsets[0]!, size }));
      expect((await readRecords(log, locations)).map((r) => r.body.toString()[0])).toEqual(['a', 'b', 'c']);
      expect((await stat(log.segmentList[0]!.path)).size).toBe(size * 2);
    } finally {
      writes.spy.mockRestore();
    }
    await log.close();
  });
});
