import { describe, expect, it } from 'vitest';
import { RecentRecords } from '../../../src/storage/recent-records.js';

/** A small deterministic generator, so a failure replays. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

describe('RecentRecords', () => {
  it('returns exact copies of the newest records that fit, never bytes a later record overwrote', () => {
    const problems: string[] = [];
    for (const seed of [1, 2, 3, 4, 5]) {
      const random = rng(seed);
      const capacity = 1000;
      const recent = new RecentRecords(capacity);
      const written: { offset: number; bytes: Buffer }[] = [];
      let offset = 0;
      for (let i = 0; i < 2000; i++) {
        const size = 4 + Math.floor(random() * 300);
        const bytes = Buffer.alloc(size, i % 251);
        bytes.writeUInt32LE(i, 0); // distinct contents per record
        recent.add(offset, bytes);
        written.push({ offset, bytes });
        offset += size + Math.floor(random() * 3); // records need not be adjacent
        // The newest is always there, and no record comes back altered (Buffer.equals: a deep
        // expect per read made this test take seconds).
        if (!recent.get(written.at(-1)!.offset)?.equals(bytes)) problems.push(`seed ${seed}: newest record ${i} missing or altered`);
        let kept = 0;
        for (const w of written.slice(-12)) {
          const got = recent.get(w.offset);
          if (got === undefined) continue;
          if (!got.equals(w.bytes)) problems.push(`seed ${seed}: record at ${w.offset} altered after record ${i}`);
          kept += w.bytes.length;
        }
        if (kept > capacity) problems.push(`seed ${seed}: ${kept} bytes kept in a ring of ${capacity}`);
      }
      // Of the newest records, those whose total fits in half the ring are all still there.
      let budget = capacity / 2;
      for (const w of written.slice().reverse()) {
        budget -= w.bytes.length;
        if (budget < 0) break;
        if (!recent.get(w.offset, w.bytes.length)?.equals(w.bytes)) problems.push(`seed ${seed}: a record within half the ring is missing`);
      }
    }
    expect(problems.slice(0, 5)).toEqual([]);
  });

  it('gives copies: changing one does not change the next read', () => {
    const recent = new RecentRecords(100);
    recent.add(0, Buffer.from('hello'));
    const first = recent.get(0)!;
    first.fill(0);
    expect(recent.get(0)!.toString()).toBe('hello');
    expect(recent.get(0, 4)).toBeUndefined(); // a size that does not match is not this record
    expect(recent.get(1)).toBeUndefined();
  });

  it('keeps nothing with no capacity, or a record larger than the ring', () => {
    const none = new RecentRecords(0);
    none.add(0, Buffer.from('x'));
    expect(none.get(0)).toBeUndefined();
    const small = new RecentRecords(4);
    small.add(0, Buffer.from('abc'));
    small.add(3, Buffer.from('toolarge'));
    expect(small.get(3)).toBeUndefined();
    expect(small.get(0)!.toString()).toBe('abc');
  });
});
