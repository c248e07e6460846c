import { afterEach, describe, expect, it } from 'vitest';
import { MessageStore, RecordType } from '../../../src/storage/index.js';
import { crashCopy, rec, tempDirs } from './helpers.js';

const dirs = tempDirs();
const open: MessageStore[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => undefined);
  await dirs.cleanup();
});

async function store(dataDir: string, beforeCheckpoint?: () => Promise<void>): Promise<MessageStore> {
  const s = await MessageStore.open({ dataDir, flush: 'sync', segmentSize: 64 * 1024, checkpointIntervalMs: 50, beforeCheckpoint, log: () => undefined });
  open.push(s);
  return s;
}

describe('held records and release', () => {
  it('keeps PREPARED and DELAYED records invisible until released, then serves them in release order', async () => {
    const s = await store(await dirs.make());
    const [half1, half2, delayed] = await s.append([
      rec({ type: RecordType.PREPARED, topic: 'orders', queueId: 1, text: 'half-1', tag: 'paid' }),
      rec({ type: RecordType.PREPARED, topic: 'points', queueId: 0, text: 'half-2' }),
      rec({ type: RecordType.DELAYED, topic: 'orders', queueId: 1, text: 'later' }),
    ]);
    await s.append([rec({ topic: 'orders', queueId: 1, text: 'plain' })]);
    expect(s.maxOffset('orders', 1)).toBe(1);
    expect(s.maxOffset('points', 0)).toBe(0);

    const released = await s.release(
      [
        { physicalOffset: half1!.physicalOffset, size: half1!.size, topic: 'orders', queueId: 1, tag: 'paid' },
        { physicalOffset: half2!.physicalOffset, size: half2!.size, topic: 'points', queueId: 0 },
      ],
      { topic: '%TX%', msgId: 'TX1', properties: { op: 'commit' } },
    );
    expect(released.queueOffsets).toEqual([1, 0]);
    const orders = await s.readQueue('orders', 1, 0, 10);
    expect(orders.records.map((r) => [r.queueOffset, r.body.toString()])).toEqual([
      [0, 'plain'],
      [1, 'half-1'],
    ]);
    // Tag filters see the released record's tag hash.
    const tagged = await s.readQueue('orders', 1, 0, 10, { tagHashes: new Set([(await import('../../../src/common/tags.js')).tagHash('paid')]) });
    expect(tagged.records.map((r) => r.body.toString())).toEqual(['half-1']);
    expect((await s.readQueue('points', 0, 0, 10)).records.map((r) => [r.queueOffset, r.body.toString()])).toEqual([[0, 'half-2']]);

    await s.release([{ physicalOffset: delayed!.physicalOffset, size: delayed!.size, topic: 'orders', queueId: 1 }], { topic: '%TIMER%', msgId: 'T1' });
    const all = await s.readQueue('orders', 1, 0, 10);
    expect(all.records.map((r) => r.body.toString())).toEqual(['plain', 'half-1', 'later']);
  });

  it('replays releases after a crash, and after a clean reopen', async () => {
    const dataDir = await dirs.make();
    const s = await store(dataDir);
    const halves = await s.append(Array.from({ length: 20 }, (_, i) => rec({ type: RecordType.PREPARED, topic: 't', queueId: 0, text: `h${i}` })));
    for (let i = 0; i < 20; i += 2) {
      await s.append([rec({ topic: 't', queueId: 0, text: `n${i}` })]);
      await s.release([{ physicalOffset: halves[i]!.physicalOffset, size: halves[i]!.size, topic: 't', queueId: 0 }], { topic: '%TX%', msgId: `TX${i}` });
    }
    const expected = (await s.readQueue('t', 0, 0, 100)).records.map((r) => r.body.toString());
    expect(expected).toHaveLength(20);

    const crashed = await store(await crashCopy(dataDir, await dirs.make()));
    expect((await crashed.readQueue('t', 0, 0, 100)).records.map((r) => r.body.toString())).toEqual(expected);
    await s.close();
    const reopened = await store(dataDir);
    expect((await reopened.readQueue('t', 0, 0, 100)).records.map((r) => r.body.toString())).toEqual(expected);
    // Offsets continue after the released entries.
    const [next] = await reopened.append([rec({ topic: 't', queueId: 0 })]);
    expect(next!.queueOffset).toBe(20);
  });

  it('scans held and release records from an offset, and runs beforeCheckpoint before each checkpoint', async () => {
    let hookCalls = 0;
    const s = await store(await dirs.make(), async () => {
      hookCalls++;
    });
    await s.append([rec({ text: 'n' })]);
    const [half] = await s.append([rec({ type: RecordType.PREPARED, text: 'h' })]);
    await s.release([{ physicalOffset: half!.physicalOffset, size: half!.size, topic: 'orders', queueId: 0 }], { topic: '%TX%', msgId: 'X' });
    const seen: [number, string][] = [];
    const n = await s.scan(0, new Set([RecordType.PREPARED, RecordType.RELEASE]), (r) => {
      seen.push([r.type, r.msgId]);
    });
    expect(n).toBe(2);
    expect(seen.map(([t]) => t)).toEqual([RecordType.PREPARED, RecordType.RELEASE]);
    expect(seen[1]![1]).toBe('X');
    const fromHalf: number[] = [];
    await s.scan(half!.physicalOffset + half!.size, new Set([RecordType.PREPARED, RecordType.RELEASE]), (r) => void fromHalf.push(r.type));
    expect(fromHalf).toEqual([RecordType.RELEASE]);
    await new Promise((r) => setTimeout(r, 150));
    expect(hookCalls).toBeGreaterThan(0);
  });
});

describe('checkpoints wait for the broker’s indexes', () => {
  it('recovery writes no checkpoint; the first one comes only after beforeCheckpoint resolved', async () => {
    const { readFile, stat } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const dataDir = await dirs.make();
    const s = await MessageStore.open({ dataDir, flush: 'sync', checkpointIntervalMs: 3_600_000, log: () => undefined });
    open.push(s);
    await s.append([rec({ type: RecordType.PREPARED, text: 'half' }), rec({ text: 'n' })]);
    const copy = await crashCopy(dataDir, await dirs.make());
    const checkpointFile = join(copy, 'checkpoint');
    const before = await readFile(checkpointFile).catch(() => undefined);

    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const calls: string[] = [];
    const recovered = await MessageStore.open({
      dataDir: copy,
      flush: 'sync',
      checkpointIntervalMs: 20,
      log: () => undefined,
      beforeCheckpoint: async () => {
        calls.push('hook');
        await gate;
      },
    });
    open.push(recovered);
    expect(recovered.recovery.scannedRecords).toBe(2);
    await new Promise((r) => setTimeout(r, 100)); // several checkpoint ticks, all held by the hook
    const during = await readFile(checkpointFile).catch(() => undefined);
    expect(during).toEqual(before);
    expect(calls.length).toBeGreaterThan(0);
    release();
    await recovered.close();
    expect((await stat(checkpointFile)).size).toBeGreaterThan(0);
    expect(await readFile(checkpointFile)).not.toEqual(before);
  });
});
