import { open } from 'node:fs/promises';
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
    const probe = await open(join(await dirs.make(), 'probe'), 'w');
    const fileHandle = Object.getPrototypeOf(probe) as { writev: (...args: unknown[]) => Promise<unknown> };
    await probe.close();
    const writev = fileHandle.writev;
    let second: { offsets: number[]; durable: Promise<void> } | undefined;
    // The second append arrives while the first round is on the disk.
    const spy = vi.spyOn(fileHandle, 'writev').mockImplementation(function (this: unknown, ...args: unknown[]) {
      second ??= log.append([encodeRecord(rec({ text: 'second' }), 1, 1)], (o) => o);
      return writev.apply(this, args);
    });
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
});
