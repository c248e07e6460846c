import { afterEach, describe, expect, it } from 'vitest';
import { CommitLog, MAX_COALESCED_READ } from '../../../src/storage/commit-log.js';
import { encodeRecord } from '../../../src/storage/record-codec.js';
import { rec, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

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
    expect((await log.readRecords(every3)).map((r) => r.body.toString())).toEqual(small.filter((_, i) => i % 3 === 0).map((_, k) => `s${k * 3}`));

    const big = Array.from({ length: 3 }, () => encodeRecord(rec({ body: Buffer.alloc(600 * 1024, 7) }), 0, 1));
    const bigAppend = log.append(big, (o) => o);
    await bigAppend.durable;
    const bigLocs = bigAppend.offsets.map((offset, i) => ({ offset, size: big[i].length }));
    const bigGroups = log.planReads(bigLocs);
    expect(bigGroups.length).toBeGreaterThan(1);
    expect(bigGroups.every((g) => g.length <= MAX_COALESCED_READ)).toBe(true);
    expect((await log.readRecords(bigLocs)).map((r) => r.body.length)).toEqual([614400, 614400, 614400]);
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
});
