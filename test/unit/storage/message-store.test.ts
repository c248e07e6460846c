import { open as openFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CorruptDataError, IllegalStateError, InvalidArgumentError, MessageTooLargeError, ShuttingDownError } from '../../../src/common/errors.js';
import { tagHash } from '../../../src/common/tags.js';
import { MessageStore, RecordType, type MessageStoreOptions } from '../../../src/storage/index.js';
import { Segment } from '../../../src/storage/segment.js';
import { captureLog, rec, tempDirs } from './helpers.js';

const dirs = tempDirs();
const open: MessageStore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
  await dirs.cleanup();
});

async function openStore(options: Partial<MessageStoreOptions> = {}): Promise<MessageStore> {
  const dataDir = options.dataDir ?? (await dirs.make());
  const store = await MessageStore.open({ flush: 'sync', segmentSize: 64 * 1024, log: captureLog().log, ...options, dataDir });
  open.push(store);
  return store;
}

describe('MessageStore append and read', () => {
  it('round-trips records across topics and queues, preserving order', async () => {
    const store = await openStore();
    const inputs = [];
    for (let i = 0; i < 30; i++) inputs.push(rec({ topic: i % 2 === 0 ? 'orders' : 'points', queueId: i % 3, text: `m${i}` }));
    const results = await store.append(inputs);
    expect(results.map((r) => r.queueOffset)).toEqual(inputs.map((_, i) => Math.floor(i / 6)));
    for (const topic of ['orders', 'points']) {
      for (let q = 0; q < 3; q++) {
        const expected = inputs.filter((r) => r.topic === topic && r.queueId === q).map((r) => Buffer.from(r.body).toString());
        expect(store.maxOffset(topic, q)).toBe(5);
        const { records, nextOffset } = await store.readQueue(topic, q, 0, 100);
        expect(records.map((r) => r.body.toString())).toEqual(expected);
        expect(records.map((r) => r.queueOffset)).toEqual([0, 1, 2, 3, 4]);
        expect(records.every((r) => r.topic === topic && r.queueId === q)).toBe(true);
        expect(nextOffset).toBe(5);
      }
    }
    const one = await store.readAt(results[7].physicalOffset);
    expect(one.body.toString()).toBe('m7');
    expect(one.msgId).toBe(inputs[7].msgId);
    expect(one.storeTimestamp).toBe(results[7].storeTimestamp);
  });

  it('assigns offsets synchronously in call order across concurrent appends', async () => {
    const store = await openStore();
    const pending = Array.from({ length: 50 }, (_, i) => store.append([rec({ text: `c${i}` })]));
    const results = await Promise.all(pending);
    expect(results.map((r) => r[0].queueOffset)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const physical = results.map((r) => r[0].physicalOffset);
    expect([...physical].sort((a, b) => a - b)).toEqual(physical);
    const { records } = await store.readQueue('orders', 0, 0, 100);
    expect(records.map((r) => r.body.toString())).toEqual(Array.from({ length: 50 }, (_, i) => `c${i}`));
  });

  it('rolls segments when a record does not fit, never splitting a record', async () => {
    const dataDir = await dirs.make();
    const store = await openStore({ dataDir, segmentSize: 8192 });
    const body = 'x'.repeat(1000);
    const results = [];
    for (let i = 0; i < 40; i++) results.push(...(await store.append([rec({ text: `${i}:${body}` })])));
    const files = await readdir(join(dataDir, 'commitlog'));
    expect(files.length).toBeGreaterThanOrEqual(5);
    expect(files.every((f) => /^\d{20}$/.test(f))).toBe(true);
    for (const r of results) {
      // A record starts and ends inside the same 8 KiB segment.
      expect(Math.floor(r.physicalOffset / 8192)).toBe(Math.floor((r.physicalOffset + r.size - 1) / 8192));
    }
    const { records } = await store.readQueue('orders', 0, 0, 1000);
    expect(records.map((r) => r.body.toString().split(':')[0])).toEqual(results.map((_, i) => String(i)));
    expect((await store.readAt(results[39].physicalOffset)).body.toString()).toBe(`39:${body}`);
  });

  it('group commit: 200 concurrent sync appends need far fewer than 200 fsyncs', async () => {
    const store = await openStore({ segmentSize: 1024 * 1024 });
    const before = store.stats;
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => store.append([rec({ queueId: i % 4 })])));
    expect(results).toHaveLength(200);
    const after = store.stats;
    expect(after.appends - before.appends).toBe(200);
    expect(after.records - before.records).toBe(200);
    expect(after.fsyncs - before.fsyncs).toBeGreaterThan(0);
    expect(after.fsyncs - before.fsyncs).toBeLessThan(50);
    expect(after.writes - before.writes).toBeLessThan(50);
    expect([0, 1, 2, 3].map((q) => store.maxOffset('orders', q))).toEqual([50, 50, 50, 50]);
  });

  it('keeps one call contiguous and gives non-NORMAL records queue offset -1, undispatched', async () => {
    const store = await openStore();
    const results = await store.append([rec(), rec({ type: RecordType.PREPARED }), rec({ type: RecordType.TX_OP }), rec({ type: 9 }), rec()]);
    expect(results.map((r) => r.queueOffset)).toEqual([0, -1, -1, -1, 1]);
    for (let i = 1; i < results.length; i++) expect(results[i].physicalOffset).toBe(results[i - 1].physicalOffset + results[i - 1].size);
    expect(store.maxOffset('orders', 0)).toBe(2);
    const half = await store.readAt(results[1].physicalOffset);
    expect(half.type).toBe(RecordType.PREPARED);
    expect(half.queueOffset).toBe(-1);
  });

  it('fires dispatch listeners and makes entries readable when append resolves', async () => {
    const store = await openStore();
    const events: [string, number, number][] = [];
    const off = store.onDispatch((topic, queueId, maxOffset) => events.push([topic, queueId, maxOffset]));
    await store.append([rec({ queueId: 1 }), rec({ queueId: 1 }), rec({ queueId: 2 })]);
    expect(events).toEqual([
      ['orders', 1, 2],
      ['orders', 2, 1],
    ]);
    const { records } = await store.readQueue('orders', 1, 0, 10);
    expect(records).toHaveLength(2);
    await Promise.all([store.append([rec({ queueId: 1 })]), store.append([rec({ queueId: 1 })])]);
    expect(events.at(-1)).toEqual(['orders', 1, 4]);
    off();
    await store.append([rec({ queueId: 1 })]);
    expect(events.at(-1)).toEqual(['orders', 1, 4]);
    expect(store.maxOffset('orders', 1)).toBe(5);
  });

  it('filters by tag hash; nextOffset covers filtered entries', async () => {
    const store = await openStore();
    const tags = ['A', 'B', undefined, 'A', 'C', 'B', 'A', undefined];
    await store.append(tags.map((tag, i) => rec({ tag, text: `t${i}` })));
    const a = await store.readQueue('orders', 0, 0, 8, { tagHashes: new Set([tagHash('A')]) });
    expect(a.records.map((r) => r.body.toString())).toEqual(['t0', 't3', 't6']);
    expect(a.nextOffset).toBe(8);
    const bc = await store.readQueue('orders', 0, 2, 3, { tagHashes: new Set([tagHash('B'), tagHash('C')]) });
    expect(bc.records.map((r) => r.body.toString())).toEqual(['t4']);
    expect(bc.nextOffset).toBe(5);
    const none = await store.readQueue('orders', 0, 0, 8, { tagHashes: new Set([tagHash('Z')]) });
    expect(none).toEqual({ records: [], nextOffset: 8 });
  });

  it('stops at maxBytes of records but always returns one record', async () => {
    const store = await openStore();
    await store.append([0, 1, 2, 3, 4].map((i) => rec({ body: Buffer.alloc(100, i) })));
    // Each record is 178 bytes: 100 of body, 78 of header, topic and id.
    const some = await store.readQueue('orders', 0, 0, 10, { maxBytes: 2 * 178 + 177 });
    expect(some.records.map((r) => r.queueOffset)).toEqual([0, 1]);
    expect(some.nextOffset).toBe(2);
    const one = await store.readQueue('orders', 0, 3, 10, { maxBytes: 10 });
    expect(one.records.map((r) => r.queueOffset)).toEqual([3]);
    expect(one.nextOffset).toBe(4);
  });

  it('returns nothing past the visible max and 0/0 for unknown queues', async () => {
    const store = await openStore();
    await store.append([rec(), rec()]);
    expect(await store.readQueue('orders', 0, 2, 10)).toEqual({ records: [], nextOffset: 2 });
    expect(await store.readQueue('orders', 0, 7, 10)).toEqual({ records: [], nextOffset: 7 });
    expect(await store.readQueue('nope', 0, 0, 10)).toEqual({ records: [], nextOffset: 0 });
    expect([store.minOffset('nope', 3), store.maxOffset('nope', 3)]).toEqual([0, 0]);
    const partial = await store.readQueue('orders', 0, 1, 10);
    expect(partial.records.map((r) => r.queueOffset)).toEqual([1]);
    expect(partial.nextOffset).toBe(2);
  });

  it('finds the first offset at or after a store timestamp', async () => {
    const store = await openStore();
    const stamps: number[] = [];
    for (let i = 0; i < 6; i++) {
      const [r] = await store.append([rec()]);
      stamps.push(r.storeTimestamp);
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    expect(await store.offsetForTimestamp('orders', 0, 0)).toBe(0);
    expect(await store.offsetForTimestamp('orders', 0, stamps[3])).toBe(stamps.indexOf(stamps[3]));
    expect(await store.offsetForTimestamp('orders', 0, stamps[3] + 1)).toBe(stamps.findIndex((s) => s > stamps[3]));
    expect(await store.offsetForTimestamp('orders', 0, stamps[5] + 1)).toBe(6);
    expect(await store.offsetForTimestamp('unknown', 0, 1)).toBe(0);
  });

  it('enforces maxMessageSize before assigning anything', async () => {
    const store = await openStore({ maxMessageSize: 1000 });
    await store.append([rec()]);
    const err = await store.append([rec(), rec({ body: Buffer.alloc(1001) })]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MessageTooLargeError);
    expect((err as MessageTooLargeError).context).toMatchObject({ size: 1001, limit: 1000 });
    const [next] = await store.append([rec({ body: Buffer.alloc(1000) })]);
    expect(next.queueOffset).toBe(1);
    expect(store.stats.records).toBe(2);
  });

  it('rejects a record larger than a segment, and gives back the queue offsets its call took', async () => {
    const store = await openStore({ segmentSize: 4096, maxMessageSize: 10_000 });
    await store.append([rec(), rec({ queueId: 1 })]);
    // The oversized record comes last: the two before it had taken offsets 1 (queue 0) and 1 (queue 1).
    const err = await store.append([rec(), rec({ queueId: 1 }), rec({ body: Buffer.alloc(5000) })]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MessageTooLargeError);
    const next = await store.append([rec(), rec({ queueId: 1 })]);
    expect(next.map((r) => r.queueOffset)).toEqual([1, 1]);
    expect((await store.readQueue('orders', 0, 0, 10)).records.map((r) => r.queueOffset)).toEqual([0, 1]);
  });

  it('reads queues concurrently over more blocks than the read cache keeps, every record intact (evicted blocks\' memory is reused)', async () => {
    const store = await openStore({ segmentSize: 64 * 1024 * 1024, maxMessageSize: 1024 * 1024, readCacheBlocks: 32 });
    // 200 records of ~200 KB over 4 queues: about 40 blocks of 1 MiB against a cache of 32.
    const records = Array.from({ length: 200 }, (_, i) => rec({ queueId: i % 4, body: Buffer.alloc(200_000, i % 251) }));
    for (let i = 0; i < records.length; i += 50) await store.append(records.slice(i, i + 50));
    const next = [0, 0, 0, 0];
    const seen: number[][] = [[], [], [], []];
    for (let round = 0; round < 60 && next.some((n) => n < 50); round++) {
      await Promise.all(
        [0, 1, 2, 3].map(async (q) => {
          const { records: got, nextOffset } = await store.readQueue('orders', q, next[q]!, 3); // checks each crc
          for (const r of got) seen[q]!.push(r.body[0]!, r.body[r.body.length - 1]!, r.queueOffset);
          next[q] = nextOffset;
        }),
      );
    }
    for (let q = 0; q < 4; q++) {
      const want = Array.from({ length: 50 }, (_, k) => [(k * 4 + q) % 251, (k * 4 + q) % 251, k]).flat();
      expect(seen[q]).toEqual(want);
    }
  });

  it('copies a record across a block edge from the blocks around it instead of reading it again', async () => {
    const store = await openStore({ segmentSize: 64 * 1024 * 1024 });
    // ~2.6 MB of one queue: records straddle the edges at 1 MiB and 2 MiB; blocks 0 and 1 are whole.
    const records = Array.from({ length: 2400 }, (_, i) => rec({ text: `r${i}`.padEnd(1000, '.') }));
    for (let i = 0; i < records.length; i += 500) await store.append(records.slice(i, i + 500));
    const read = vi.spyOn(Segment.prototype, 'read');
    try {
      const { records: got } = await store.readQueue('orders', 0, 0, 2400); // checks each crc
      expect(got.map((r) => r.body.toString().slice(0, 6).replace(/\.+$/, ''))).toEqual(records.map((_, i) => `r${i}`.slice(0, 6)));
      const lengths = read.mock.calls.map(([, length]) => length as number);
      // Block 0, block 1, and the part block at the tail: the record across the 1 MiB edge comes
      // from blocks 0 and 1; the one across 2 MiB is read alone (block 2 is still being written).
      expect(lengths.filter((l) => l === 1024 * 1024)).toHaveLength(2);
      expect(lengths.filter((l) => l < 2000)).toHaveLength(1);
      expect(read).toHaveBeenCalledTimes(4);
    } finally {
      read.mockRestore();
    }
  });

  it('refuses a read cache of no blocks', async () => {
    await expect(MessageStore.open({ dataDir: await dirs.make(), flush: 'sync', readCacheBlocks: 0 })).rejects.toThrow(/readCacheBlocks must be a positive integer/);
  });

  it('async flush mode resolves after the write and syncs on a timer', async () => {
    const store = await openStore({ flush: 'async', flushIntervalMs: 10 });
    await Promise.all(Array.from({ length: 20 }, () => store.append([rec()])));
    expect(store.maxOffset('orders', 0)).toBe(20);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(store.stats.fsyncs).toBeGreaterThan(0);
    expect((await store.readQueue('orders', 0, 0, 50)).records).toHaveLength(20);
  });

  it('follows its lifecycle: in-flight appends finish, later calls are refused', async () => {
    const store = await openStore();
    expect(store.state).toBe('open');
    const inflight = store.append([rec()]);
    const closing = store.close();
    expect(store.state).toBe('closing');
    await expect(store.append([rec()])).rejects.toBeInstanceOf(ShuttingDownError);
    expect((await inflight)[0].queueOffset).toBe(0);
    await closing;
    expect(store.state).toBe('closed');
    await expect(store.append([rec()])).rejects.toBeInstanceOf(IllegalStateError);
    await expect(store.readQueue('orders', 0, 0, 1)).rejects.toBeInstanceOf(IllegalStateError);
    expect(() => store.maxOffset('orders', 0)).toThrow(IllegalStateError);
    await store.close();
  });

  it('reports a corrupted record on read instead of returning bad bytes', async () => {
    const dataDir = await dirs.make();
    const store = await openStore({ dataDir });
    const [a, b] = await store.append([rec({ text: 'intact' }), rec({ text: 'flipped' })]);
    const segment = join(dataDir, 'commitlog', '0'.repeat(20));
    const handle = await openFile(segment, 'r+');
    await handle.write(Buffer.from('F'), 0, 1, b.physicalOffset + b.size - 1);
    await handle.close();
    await expect(store.readAt(b.physicalOffset)).rejects.toBeInstanceOf(CorruptDataError);
    await expect(store.readQueue('orders', 0, 0, 10)).rejects.toBeInstanceOf(CorruptDataError);
    expect((await store.readAt(a.physicalOffset)).body.toString()).toBe('intact');
  });

  it('validates options', async () => {
    const dataDir = await dirs.make();
    await expect(MessageStore.open({ dataDir, flush: 'sometimes' as 'sync' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(MessageStore.open({ dataDir, flush: 'sync', segmentSize: 10 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
