import { open as openFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageStore } from '../../../src/storage/index.js';
import { rec, tempDirs } from './helpers.js';

describe('commit log: recent-record cache (recentCacheBytes)', () => {
  const dirs = tempDirs();
  const stores: MessageStore[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    await dirs.cleanup();
  });

  async function open(recentCacheBytes: number): Promise<{ store: MessageStore; segment: string }> {
    const dataDir = await dirs.make();
    const store = await MessageStore.open({ dataDir, flush: 'sync', recentCacheBytes });
    stores.push(store);
    return { store, segment: join(dataDir, 'commitlog', '0'.repeat(20)) };
  }

  /** Overwrites a body byte on disk: a read that still returns the original came from memory. */
  async function scribble(segment: string, offset: number): Promise<void> {
    const handle = await openFile(segment, 'r+');
    await handle.write(Buffer.from('#'), 0, 1, offset);
    await handle.close();
  }

  it('serves fresh records from memory, identical to what a file read returns', async () => {
    const { store: cached } = await open(1 << 20);
    const { store: plain } = await open(0);
    const input = Array.from({ length: 20 }, (_, i) => rec({ queueId: i % 2, text: `body-${i}`, tag: 't', keys: [`k${i}`], properties: { p: String(i) } }));
    await cached.append(input);
    await plain.append(input);
    for (const q of [0, 1]) {
      const a = await cached.readQueue('orders', q, 0, 100);
      const b = await plain.readQueue('orders', q, 0, 100, { maxBytes: 1 << 20 });
      const strip = (rs: typeof a.records) => rs.map(({ storeTimestamp: _t, ...r }) => r);
      expect(strip(a.records)).toEqual(strip(b.records));
      expect(a.records.map((r) => r.body.toString())).toEqual(input.filter((_, i) => i % 2 === q).map((r) => r.body.toString()));
    }
  });

  it('keeps only the newest records within the byte budget; older ones are read from the file', async () => {
    const { store, segment } = await open(4096);
    const results = [];
    for (let i = 0; i < 40; i++) results.push(...(await store.append([rec({ text: `m${i}-` + 'x'.repeat(200) })])));
    const oldest = results[0]!;
    const newest = results.at(-1)!;
    await scribble(segment, oldest.physicalOffset + oldest.size - 1);
    await scribble(segment, newest.physicalOffset + newest.size - 1);
    // The oldest was evicted: its read goes to the file and sees the damage (CRC check).
    await expect(store.readAt(oldest.physicalOffset)).rejects.toThrow(/CRC|corrupt/i);
    // The newest is still in memory.
    expect((await store.readAt(newest.physicalOffset)).body.toString()).toBe('m39-' + 'x'.repeat(200));
  });
});
