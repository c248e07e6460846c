import { appendFile, cp, readdir, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageStore, type MessageStoreOptions } from '../../../src/storage/index.js';
import { captureLog, crashCopy, rec, tempDirs, type LogLine } from './helpers.js';

const dirs = tempDirs();
const open: MessageStore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
  await dirs.cleanup();
});

const BASE = { flush: 'sync', segmentSize: 16 * 1024, cqEntriesPerFile: 7, checkpointIntervalMs: 60_000 } as const;

async function openStore(dataDir: string, options: Partial<MessageStoreOptions> = {}): Promise<{ store: MessageStore; lines: LogLine[] }> {
  const { lines, log } = captureLog();
  const store = await MessageStore.open({ ...BASE, log, ...options, dataDir });
  open.push(store);
  return { store, lines };
}

async function closeStore(store: MessageStore): Promise<void> {
  await store.close();
  open.splice(open.indexOf(store), 1);
}

async function fill(store: MessageStore, count: number, prefix: string): Promise<void> {
  for (let i = 0; i < count; i += 10) {
    await store.append(Array.from({ length: Math.min(10, count - i) }, (_, j) => rec({ queueId: (i + j) % 3, text: `${prefix}${i + j}:${'p'.repeat(200)}` })));
  }
}

async function bodies(store: MessageStore, queueId: number): Promise<string[]> {
  const { records } = await store.readQueue('orders', queueId, 0, 10_000);
  return records.map((r) => r.body.toString().split(':')[0]);
}

/** Reads a queue in small pages, so reads start and stop inside consume-queue files. */
async function pagedBodies(store: MessageStore, queueId: number, page: number): Promise<string[]> {
  const out: string[] = [];
  for (let offset = 0; ; ) {
    const { records, nextOffset } = await store.readQueue('orders', queueId, offset, page);
    if (records.length === 0) return out;
    expect(records[0].queueOffset).toBe(offset);
    out.push(...records.map((r) => r.body.toString().split(':')[0]));
    offset = nextOffset;
  }
}

function expected(count: number, prefix: string, queueId: number): string[] {
  return Array.from({ length: count }, (_, i) => i)
    .filter((i) => i % 3 === queueId)
    .map((i) => `${prefix}${i}`);
}

async function lastSegment(dataDir: string): Promise<string> {
  const files = (await readdir(join(dataDir, 'commitlog'))).sort();
  return join(dataDir, 'commitlog', files[files.length - 1]);
}

const TORN = /^commit log: torn tail at offset \d+ in segment \d{20}, truncated \d+ bytes$/;

describe('MessageStore recovery', () => {
  it('keeps everything across a clean close and reopen', async () => {
    const dataDir = await dirs.make();
    const first = await openStore(dataDir);
    expect(first.store.recovery).toMatchObject({ cleanShutdown: false, scannedRecords: 0, truncatedBytes: 0 });
    await fill(first.store, 120, 'a');
    await closeStore(first.store);

    const { store } = await openStore(dataDir);
    expect(store.recovery).toMatchObject({ cleanShutdown: true, scannedRecords: 0, redispatched: 0, truncatedBytes: 0 });
    for (const q of [0, 1, 2]) {
      expect(store.maxOffset('orders', q)).toBe(40);
      expect(await bodies(store, q)).toEqual(expected(120, 'a', q));
      for (const page of [1, 3, 8]) expect(await pagedBodies(store, q, page)).toEqual(expected(120, 'a', q));
    }
    const [next] = await store.append([rec({ queueId: 1 })]);
    expect(next.queueOffset).toBe(40);
  });

  it('after a crash every acknowledged record is readable, before and after the checkpoint', async () => {
    const dataDir = await dirs.make();
    const first = await openStore(dataDir);
    await fill(first.store, 60, 'a');
    await closeStore(first.store); // the checkpoint now covers the first 60
    const { store } = await openStore(dataDir);
    await fill(store, 45, 'b');
    const copy = await crashCopy(dataDir, await dirs.make());

    const { store: recovered } = await openStore(copy);
    expect(recovered.recovery.cleanShutdown).toBe(false);
    expect(recovered.recovery.fromOffset).toBeGreaterThan(0);
    expect(recovered.recovery.scannedRecords).toBe(45);
    expect(recovered.recovery.redispatched).toBe(45);
    for (const q of [0, 1, 2]) {
      expect(await bodies(recovered, q)).toEqual([...expected(60, 'a', q), ...expected(45, 'b', q)]);
    }
    const [next] = await recovered.append([rec({ queueId: 0 })]);
    expect(next.queueOffset).toBe(20 + 15);
  });

  it('survives a crash while checkpoints run concurrently with appends', async () => {
    const dataDir = await dirs.make();
    const { store } = await openStore(dataDir, { checkpointIntervalMs: 2 });
    await fill(store, 75, 'a');
    await new Promise((resolve) => setTimeout(resolve, 40));
    await Promise.all([fill(store, 75, 'b'), ...[0, 1, 2].map((q) => store.append([rec({ queueId: q, text: `x${q}:y` })]))]);
    const copy = await crashCopy(dataDir, await dirs.make());
    const { store: recovered, lines } = await openStore(copy);
    expect(lines.filter((l) => l.level !== 'info')).toEqual([]);
    expect(recovered.recovery.fromOffset).toBeGreaterThan(0);
    expect(recovered.recovery.scannedRecords).toBeLessThan(153 - 75 + 1);
    for (const q of [0, 1, 2]) {
      const got = await bodies(recovered, q);
      expect(got).toHaveLength(51);
      expect(got.filter((b) => !b.startsWith('x'))).toEqual([...expected(75, 'a', q), ...expected(75, 'b', q)]);
      expect(await pagedBodies(recovered, q, 4)).toEqual(got);
    }
    // The live store too: by now some entries are in files and some still in memory.
    for (const q of [0, 1, 2]) expect(await pagedBodies(store, q, 5)).toEqual(await bodies(store, q));
  });

  it('async mode: a crash keeps what was dispatched', async () => {
    const dataDir = await dirs.make();
    const { store } = await openStore(dataDir, { flush: 'async', flushIntervalMs: 5 });
    await fill(store, 30, 'a');
    const copy = await crashCopy(dataDir, await dirs.make());
    const { store: recovered } = await openStore(copy);
    for (const q of [0, 1, 2]) expect(await bodies(recovered, q)).toEqual(expected(30, 'a', q));
  });

  it('truncates garbage after the last record, then keeps working across reopen', async () => {
    const dataDir = await dirs.make();
    const first = await openStore(dataDir);
    await fill(first.store, 30, 'a');
    await closeStore(first.store);
    const segment = await lastSegment(dataDir);
    const before = (await stat(segment)).size;
    await appendFile(segment, Buffer.from('this is not a record, just garbage bytes'));

    const { store, lines } = await openStore(dataDir);
    expect(store.recovery.truncatedBytes).toBe(40);
    expect((await stat(segment)).size).toBe(before);
    const warn = lines.filter((l) => l.level === 'warn');
    expect(warn).toHaveLength(1);
    expect(warn[0].message).toMatch(TORN);
    expect(warn[0].message).toContain(`truncated 40 bytes`);
    for (const q of [0, 1, 2]) expect(await bodies(store, q)).toEqual(expected(30, 'a', q));

    await store.append([rec({ queueId: 0, text: 'after:x' })]);
    await closeStore(store);
    const { store: again, lines: againLines } = await openStore(dataDir);
    expect(againLines.filter((l) => l.level === 'warn')).toEqual([]);
    expect(await bodies(again, 0)).toEqual([...expected(30, 'a', 0), 'after']);
  });

  it('truncates a record cut in the middle (torn write) and reuses its queue offset', async () => {
    const dataDir = await dirs.make();
    const { store } = await openStore(dataDir);
    await fill(store, 30, 'a');
    const [last] = await store.append([rec({ queueId: 2, text: 'torn:' + 'z'.repeat(300) })]);
    const copy = await crashCopy(dataDir, await dirs.make());
    const segment = await lastSegment(copy);
    await truncate(segment, (await stat(segment)).size - 100);

    const { store: recovered, lines } = await openStore(copy);
    const torn = lines.find((l) => TORN.test(l.message));
    expect(torn?.level).toBe('warn');
    expect(torn?.message).toContain(`at offset ${last.physicalOffset}`);
    expect(recovered.recovery.truncatedBytes).toBe(last.size - 100);
    expect(recovered.maxOffset('orders', 2)).toBe(10);
    for (const q of [0, 1, 2]) expect(await bodies(recovered, q)).toEqual(expected(30, 'a', q));
    const [again] = await recovered.append([rec({ queueId: 2, text: 'new:x' })]);
    expect(again.queueOffset).toBe(10);
    expect(again.physicalOffset).toBe(last.physicalOffset);
  });

  it('rebuilds consume queues from the log when their files are deleted', async () => {
    const dataDir = await dirs.make();
    const first = await openStore(dataDir);
    await fill(first.store, 60, 'a');
    await closeStore(first.store);
    await rm(join(dataDir, 'consumequeue'), { recursive: true });

    const { store } = await openStore(dataDir);
    expect(store.recovery.fromOffset).toBe(0);
    expect(store.recovery.redispatched).toBe(60);
    for (const q of [0, 1, 2]) expect(await bodies(store, q)).toEqual(expected(60, 'a', q));
  });

  it('notices one lost queue against the checkpoint and rebuilds it', async () => {
    const dataDir = await dirs.make();
    const first = await openStore(dataDir);
    await fill(first.store, 60, 'a');
    await closeStore(first.store);
    await rm(join(dataDir, 'consumequeue', 'orders', '1'), { recursive: true });

    const { store, lines } = await openStore(dataDir);
    expect(lines.some((l) => l.level === 'warn' && l.message.includes('orders/1'))).toBe(true);
    expect(store.maxOffset('orders', 1)).toBe(20);
    for (const q of [0, 1, 2]) expect(await bodies(store, q)).toEqual(expected(60, 'a', q));
  });

  it('drops zero-filled and partial entries at a consume-queue tail', async () => {
    const dataDir = await dirs.make();
    const { store } = await openStore(dataDir, { checkpointIntervalMs: 20 });
    await fill(store, 30, 'a');
    await new Promise((resolve) => setTimeout(resolve, 60));
    const copy = await crashCopy(dataDir, await dirs.make());
    const qdir = join(copy, 'consumequeue', 'orders', '0');
    const files = (await readdir(qdir)).sort();
    await appendFile(join(qdir, files[files.length - 1]), Buffer.alloc(47));

    const { store: recovered } = await openStore(copy);
    expect(recovered.maxOffset('orders', 0)).toBe(10);
    expect(await bodies(recovered, 0)).toEqual(expected(30, 'a', 0));
    const [next] = await recovered.append([rec({ queueId: 0, text: 'next:x' })]);
    expect(next.queueOffset).toBe(10);
    expect(await bodies(recovered, 0)).toEqual([...expected(30, 'a', 0), 'next']);
  });

  it('rebuilds from the whole log when the checkpoint is missing or corrupt', async () => {
    const dataDir = await dirs.make();
    const first = await openStore(dataDir);
    await fill(first.store, 30, 'a');
    await closeStore(first.store);
    await appendFile(join(dataDir, 'checkpoint'), 'x');

    const { store, lines } = await openStore(dataDir);
    expect(lines.some((l) => l.level === 'warn' && l.message.startsWith('checkpoint unreadable'))).toBe(true);
    expect(store.recovery).toMatchObject({ fromOffset: 0, scannedRecords: 30, redispatched: 30 });
    for (const q of [0, 1, 2]) expect(await bodies(store, q)).toEqual(expected(30, 'a', q));
    await closeStore(store);

    await rm(join(dataDir, 'checkpoint'));
    const { store: again } = await openStore(dataDir);
    expect(again.recovery.redispatched).toBe(30);
    for (const q of [0, 1, 2]) expect(await bodies(again, q)).toEqual(expected(30, 'a', q));
  });
});
