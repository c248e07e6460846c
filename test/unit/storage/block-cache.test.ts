import { describe, expect, it } from 'vitest';
import { BlockCache } from '../../../src/storage/block-cache.js';

const SIZE = 64;

/** A load that fills a block with its start (mod 256), and records what memory it was given. */
function loader(given: (Buffer | undefined)[]) {
  return (start: number) =>
    (spare: Buffer | undefined): Promise<Buffer> => {
      given.push(spare);
      const buf = spare !== undefined && spare.length >= SIZE ? spare.subarray(0, SIZE) : Buffer.alloc(SIZE); // a whole allocation (allocUnsafe of 64 bytes would be a slice of the shared pool)
      return Promise.resolve(buf.fill(start % 256));
    };
}

describe('BlockCache', () => {
  it('shares one load between readers, and serves hits without loading again', async () => {
    const cache = new BlockCache(2);
    let loads = 0;
    const load = () => {
      loads++;
      return Promise.resolve(Buffer.alloc(SIZE, 1));
    };
    const a = cache.acquire(0, load);
    const b = cache.acquire(0, load);
    expect(await a.bytes).toBe(await b.bytes);
    a.release();
    b.release();
    await cache.get(0, load);
    expect(loads).toBe(1);
  });

  it('reuses the memory of an evicted block only after every reader released it', async () => {
    const cache = new BlockCache(1);
    const given: (Buffer | undefined)[] = [];
    const load = loader(given);
    const first = cache.acquire(1, load(1));
    const firstBytes = await first.bytes;
    // Block 2 evicts block 1 while a reader still holds it: its memory must not be reused yet.
    const second = cache.acquire(2, load(2));
    await second.bytes;
    second.release();
    const third = cache.acquire(3, load(3)); // evicts block 2, released: its memory is spare now
    expect(await third.bytes).toEqual(Buffer.alloc(SIZE, 3));
    expect(firstBytes).toEqual(Buffer.alloc(SIZE, 1)); // untouched while held
    expect(given[2]).toBeDefined(); // block 3 was read into block 2's memory
    first.release(); // block 1's memory goes spare now
    first.release(); // twice is harmless
    const fourth = cache.acquire(4, load(4)); // evicts block 3, still held: block 1's memory is used
    expect(given[3]).toBe(firstBytes);
    expect(await fourth.bytes).toEqual(Buffer.alloc(SIZE, 4));
    expect(await third.bytes).toEqual(Buffer.alloc(SIZE, 3));
    third.release();
    fourth.release();
  });

  it('never reuses a block handed out by get: its views may live anywhere', async () => {
    const cache = new BlockCache(1);
    const given: (Buffer | undefined)[] = [];
    const load = loader(given);
    const kept = await cache.get(1, () => load(1)(undefined));
    const next = cache.acquire(2, load(2)); // evicts block 1
    await next.bytes;
    next.release();
    const after = cache.acquire(3, load(3));
    await after.bytes;
    expect(given.every((g) => g !== kept)).toBe(true);
    expect(kept).toEqual(Buffer.alloc(SIZE, 1));
    after.release();
  });

  it('forgets a failed load, so the next reader loads again', async () => {
    const cache = new BlockCache(2);
    const failing = cache.acquire(5, () => Promise.reject(new Error('disk')));
    await expect(failing.bytes).rejects.toThrow('disk');
    failing.release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(cache.has(5)).toBe(false);
    const retry = cache.acquire(5, () => Promise.resolve(Buffer.alloc(SIZE, 5)));
    expect(await retry.bytes).toEqual(Buffer.alloc(SIZE, 5));
    retry.release();
  });
});
