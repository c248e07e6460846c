import { open as openFile, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageStore, type AppendResult, type MessageStoreOptions } from '../../../src/storage/index.js';
import { dataEnd, segmentFiles as segments } from '../../helpers/segment-files.js';
import { captureLog, crashCopy, rec, tempDirs, type LogLine } from './helpers.js';

const dirs = tempDirs();
const stores: MessageStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await dirs.cleanup();
});

const BASE = { flush: 'sync', segmentSize: 64 * 1024, preallocateBytes: 8192, cqEntriesPerFile: 50, checkpointIntervalMs: 60_000 } as const;

async function openStore(dataDir: string, options: Partial<MessageStoreOptions> = {}): Promise<{ store: MessageStore; lines: LogLine[] }> {
  const { lines, log } = captureLog();
  const store = await MessageStore.open({ ...BASE, log, ...options, dataDir });
  stores.push(store);
  return { store, lines };
}

async function fill(store: MessageStore, count: number, prefix: string): Promise<AppendResult> {
  let last!: AppendResult;
  for (let i = 0; i < count; i++) [last] = await store.append([rec({ text: `${prefix}${i}:${'p'.repeat(300)}` })]);
  return last;
}

async function bodies(store: MessageStore): Promise<string[]> {
  const { records } = await store.readQueue('orders', 0, 0, 100_000);
  return records.map((r) => r.body.toString().split(':')[0]!);
}

const names = (prefix: string, count: number): string[] => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

/** Waits until the tail file has grown past `end` (preallocation runs in the background). */
async function preallocated(file: string, end: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const { size } = await stat(file);
    if (size > end) return size;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`${file} was never preallocated past ${end}`);
}

describe('commit-log preallocation', () => {
  it('keeps zeros ahead of the data; after a crash the data end is found, nothing is truncated, appends continue there', async () => {
    const dataDir = await dirs.make();
    const { store } = await openStore(dataDir);
    const last = await fill(store, 20, 'a');
    const [tail] = await segments(dataDir);
    const end = last.physicalOffset + last.size;
    const fileSize = await preallocated(tail!, end);
    expect(fileSize).toBeGreaterThanOrEqual(end + 8192 - 1);

    const copy = await crashCopy(dataDir, await dirs.make());
    const { store: recovered, lines } = await openStore(copy);
    expect(lines.filter((l) => l.level !== 'info')).toEqual([]);
    expect(recovered.recovery.truncatedBytes).toBe(0);
    expect(await bodies(recovered)).toEqual(names('a', 20));
    const [next] = await recovered.append([rec({ text: 'b0:x' })]);
    expect(next!.physicalOffset).toBe(end);

    const again = await crashCopy(copy, await dirs.make());
    const { store: third, lines: thirdLines } = await openStore(again);
    expect(thirdLines.filter((l) => l.level !== 'info')).toEqual([]);
    expect(await bodies(third)).toEqual([...names('a', 20), 'b0']);
  });

  it('cuts a record found after zeros in the free space (a torn round) and never brings it back', async () => {
    const dataDir = await dirs.make();
    const { store } = await openStore(dataDir);
    const first = (await store.append([rec({ text: 'planted:' + 'q'.repeat(300) })]))[0]!;
    const last = await fill(store, 10, 'a');
    const [tail] = await segments(dataDir);
    const end = last.physicalOffset + last.size;
    await preallocated(tail!, end);
    const copy = await crashCopy(dataDir, await dirs.make());

    // A later page of an unacknowledged round reached the disk, an earlier one did not: a valid
    // record sits 1 KiB past the data end, zeros before it.
    const [copyTail] = await segments(copy);
    const valid = (await readFile(copyTail!)).subarray(first.physicalOffset, first.physicalOffset + first.size);
    const fh = await openFile(copyTail!, 'r+');
    await fh.write(valid, 0, valid.length, end + 1024);
    await fh.close();

    const { store: recovered, lines } = await openStore(copy);
    const warn = lines.filter((l) => l.level === 'warn');
    expect(warn).toHaveLength(1);
    expect(warn[0]!.message).toContain(`torn tail at offset ${end}`);
    expect(recovered.recovery.truncatedBytes).toBeGreaterThan(1024);
    expect(await bodies(recovered)).toEqual(['planted', ...names('a', 10)]);

    // A short append lands where the planted record's zeros were; a second crash must not find it.
    await recovered.append([rec({ text: 'b0:x' })]);
    const again = await crashCopy(copy, await dirs.make());
    const { store: third } = await openStore(again);
    expect(await bodies(third)).toEqual(['planted', ...names('a', 10), 'b0']);
  });

  it('trims a segment to its data when the next one starts, so only the tail has free space', async () => {
    const dataDir = await dirs.make();
    const { store } = await openStore(dataDir, { segmentSize: 16 * 1024 });
    const last = await fill(store, 150, 'a');
    const files = await segments(dataDir);
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const file of files.slice(0, -1)) expect((await stat(file)).size).toBe(await dataEnd(file));
    await preallocated(files.at(-1)!, last.physicalOffset + last.size - Number(files.at(-1)!.slice(-20)));

    // A full rebuild walks every segment: no tear anywhere, every record back.
    const copy = await crashCopy(dataDir, await dirs.make());
    await rm(join(copy, 'checkpoint'), { force: true });
    const { store: recovered, lines } = await openStore(copy, { segmentSize: 16 * 1024 });
    expect(lines.filter((l) => l.level !== 'info')).toEqual([]);
    expect(recovered.recovery.redispatched).toBe(150);
    expect(await bodies(recovered)).toEqual(names('a', 150));
  });

  it('pauses while the log is written faster than preallocateMaxRate, and resumes when the rate falls', async () => {
    const dataDir = await dirs.make();
    const { store } = await openStore(dataDir, { segmentSize: 16 * 1024 * 1024, preallocateMaxRate: 16 * 1024 });
    // 4 KB appends about every millisecond (even a slow disk's 20 ms a write is 200 KB/s, far above
    // 16 KiB/s), for longer than the 250 ms window the rate is measured over.
    const until = performance.now() + 600;
    let last!: AppendResult;
    for (let i = 0; i < 2000 && performance.now() < until; i++) {
      [last] = await store.append([rec({ text: `a${i}:${'p'.repeat(4000)}` })]);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    const [tail] = await segments(dataDir);
    let end = last.physicalOffset + last.size;
    expect(end).toBeGreaterThan(8192 * 4); // well past what the first window preallocated
    expect((await stat(tail!)).size).toBe(end);

    // One append every 300 ms is ~1 KB/s: the next closed window lets preallocation run again.
    for (let i = 0; i < 5 && (await stat(tail!)).size <= end; i++) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      [last] = await store.append([rec({ text: `b${i}:x` })]);
      end = last.physicalOffset + last.size;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await preallocated(tail!, end)).toBeGreaterThanOrEqual(end + 8192 - 1);
  });

  it('async mode preallocates too, and a clean close leaves a store that reopens without warnings', async () => {
    const dataDir = await dirs.make();
    const { store } = await openStore(dataDir, { flush: 'async', flushIntervalMs: 5 });
    const last = await fill(store, 30, 'a');
    const [tail] = await segments(dataDir);
    await preallocated(tail!, last.physicalOffset + last.size);
    await store.close();
    stores.splice(stores.indexOf(store), 1);
    const { store: reopened, lines } = await openStore(dataDir, { flush: 'async' });
    expect(lines.filter((l) => l.level !== 'info')).toEqual([]);
    expect(reopened.recovery.truncatedBytes).toBe(0);
    expect(await bodies(reopened)).toEqual(names('a', 30));
  });
});
