import { afterEach, describe, expect, it } from 'vitest';
import { ConsumeQueue, CQ_ENTRY_SIZE } from '../../../src/storage/consume-queue.js';
import { u32, u64 } from '../../../src/common/le.js';
import { tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/** The entry the model expects at queue offset i: distinct in every field. */
const physicalOf = (i: number): number => 0x1_0000_0000 * (i % 3) + i * 1000;
const sizeOf = (i: number): number => 100 + (i % 977);
const hashOf = (i: number): number => (i * 2_654_435_761) >>> 0;

function decoded(buf: Buffer): number[][] {
  const out: number[][] = [];
  for (let at = 0; at < buf.length; at += CQ_ENTRY_SIZE) out.push([u64(buf, at), u32(buf, at + 8), u32(buf, at + 12)]);
  return out;
}

function expected(from: number, count: number): number[][] {
  return Array.from({ length: count }, (_, k) => [physicalOf(from + k), sizeOf(from + k), hashOf(from + k)]);
}

describe('ConsumeQueue.readEntries', () => {
  it('returns the entries put, across files, read blocks and the unwritten tail, as writes go on', async () => {
    // 5,000 entries a file: the 4,096-entry read blocks do not line up with the files.
    const cq = new ConsumeQueue(await dirs.make(), 'orders', 0, 5_000);
    let put = 0;
    const putUpTo = (n: number): void => {
      for (; put < n; put++) expect(cq.put(put, physicalOf(put), sizeOf(put), hashOf(put))).toBe('added');
    };
    const ranges: [number, number][] = [];
    // Reads land before, across and after every block and file edge, some served from the cache
    // and some re-read while the tail was still in memory.
    let written = 0;
    for (const [total, writeOut] of [[3_000, true], [9_000, false], [9_000, true], [16_000, false], [16_000, true]] as const) {
      putUpTo(total);
      if (writeOut) {
        await cq.writePending();
        written = total;
      }
      ranges.push([0, 1], [4_090, 12], [4_999, 3], [4_095, 906], [written - 5, 10], [total - 300, 300], [0, Math.min(total, 9_000)]);
      for (const [from, count] of ranges) {
        if (from < 0 || from + count > total) continue;
        expect(decoded(await cq.readEntries(from, count)), `entries [${from}, ${from + count}) of ${total}`).toEqual(expected(from, count));
      }
    }
    await cq.close();
  });
});
