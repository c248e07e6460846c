import { appendFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HashIndex, type HashIndexOptions } from '../../../src/storage/index.js';
import { HASH_INDEX_ENTRY_BYTES, hashKey } from '../../../src/storage/hash-index.js';
import { tempDirs } from './helpers.js';

const dirs = tempDirs();
const open: HashIndex[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((i) => i.close().catch(() => undefined)));
  await dirs.cleanup();
});

// Tiny files so that a hundred entries cross many seals; three slots make many keys share a
// chain, so lookups must tell keys apart by hash along it.
const SMALL: HashIndexOptions = { entriesPerFile: 16, slotsPerFile: 3 };

async function openIndex(dir: string, options: HashIndexOptions = SMALL): Promise<HashIndex> {
  const index = await HashIndex.open(dir, options);
  open.push(index);
  return index;
}

async function closeIndex(index: HashIndex): Promise<void> {
  open.splice(open.indexOf(index), 1);
  await index.close();
}

/** key-i gets values i, i+1000, i+2000 (added in that order, interleaved with other keys). */
function fill(index: HashIndex, keys: number): void {
  for (let round = 0; round < 3; round++) for (let i = 0; i < keys; i++) index.add(`key-${i}`, i + round * 1000);
}

async function expectFilled(index: HashIndex, keys: number): Promise<void> {
  for (let i = 0; i < keys; i++) expect(await index.lookup(`key-${i}`)).toEqual([i, i + 1000, i + 2000]);
  expect(await index.lookup('absent')).toEqual([]);
}

describe('HashIndex', () => {
  it('finds every value of a key, oldest first, across sealed files and after reopening', async () => {
    const dir = await dirs.make();
    const index = await openIndex(dir);
    fill(index, 50); // 150 entries: nine full files and a partial tenth
    await expectFilled(index, 50); // served partly from memory while seals run
    await index.sync();
    await expectFilled(index, 50);
    await closeIndex(index);

    const names = (await readdir(dir)).sort();
    expect(names.filter((n) => n.endsWith('.slots'))).toHaveLength(9);
    for (const n of names.filter((n) => /^\d{20}$/.test(n))) {
      expect((await stat(join(dir, n))).size % HASH_INDEX_ENTRY_BYTES).toBe(0);
    }

    const reopened = await openIndex(dir);
    await expectFilled(reopened, 50);
    reopened.add('key-7', 9999);
    expect(await reopened.lookup('key-7')).toEqual([7, 1007, 2007, 9999]);
  });

  it('repeats of a value are returned once', async () => {
    const index = await openIndex(await dirs.make());
    // A crash's replay re-adds entries written before it.
    for (let i = 0; i < 3; i++) index.add('order-1', 42);
    index.add('order-1', 43);
    expect(await index.lookup('order-1')).toEqual([42, 43]);
  });

  it('cuts a torn tail back to whole entries, relinks zeroed entries, and keeps appending', async () => {
    const dir = await dirs.make();
    const oneChain = { entriesPerFile: 16, slotsPerFile: 1 }; // every entry links to the one before
    const index = await openIndex(dir, oneChain);
    fill(index, 4); // 12 entries, all in the first file
    await closeIndex(index);
    const file = join(dir, '0'.repeat(20));
    // A crash can leave zeros where entries were about to be written, then half an entry.
    await appendFile(file, Buffer.alloc(2 * HASH_INDEX_ENTRY_BYTES));
    await appendFile(file, Buffer.from('torn...'));

    const reopened = await openIndex(dir, oneChain);
    expect((await stat(file)).size).toBe(14 * HASH_INDEX_ENTRY_BYTES);
    await expectFilled(reopened, 4);
    // Two more fill the repaired file and seal it: lookups then follow its links on disk, which
    // must pass over the zeroed entries to the older ones.
    for (let i = 0; i < 4; i++) reopened.add(`key-${i}`, 5000 + i);
    await reopened.sync();
    await closeIndex(reopened);

    const again = await openIndex(dir, oneChain);
    for (let i = 0; i < 4; i++) expect(await again.lookup(`key-${i}`)).toEqual([i, i + 1000, i + 2000, 5000 + i]);
  });

  it('rebuilds the slots of a file whose seal a crash interrupted', async () => {
    const dir = await dirs.make();
    const index = await openIndex(dir);
    fill(index, 20); // 60 entries: three sealed files
    await index.sync();
    await closeIndex(index);
    const slots = (await readdir(dir)).filter((n) => n.endsWith('.slots')).sort();
    expect(slots.length).toBe(3);
    await rm(join(dir, slots[1]!));
    await writeFile(join(dir, slots[2]!), Buffer.alloc(5)); // a short, torn slots file

    const reopened = await openIndex(dir);
    await expectFilled(reopened, 20);
    expect((await stat(join(dir, slots[1]!))).size).toBe(3 * 4 + 8);
  });

  it('hashes the same in every process (the files outlive it)', () => {
    expect(hashKey('')).toBe(0x811c9dc5);
    expect(hashKey('a')).toBe(0xe40c292c); // FNV-1a reference value
    expect(hashKey('i\u0000order-1')).not.toBe(hashKey('k\u0000order-1'));
  });
});
