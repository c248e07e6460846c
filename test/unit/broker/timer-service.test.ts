import { afterEach, describe, expect, it } from 'vitest';
import { SystemProperty } from '../../../src/common/system-properties.js';
import { TimerIndex } from '../../../src/broker/timer-index.js';
import { TimerService } from '../../../src/broker/timer-service.js';
import { MessageStore, MetadataStore, RecordType } from '../../../src/storage/index.js';
import { crashCopy, rec, tempDirs } from '../storage/helpers.js';

const dirs = tempDirs();
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  await dirs.cleanup();
});

async function boot(dataDir: string) {
  const store = await MessageStore.open({ dataDir, flush: 'sync', checkpointIntervalMs: 3_600_000 });
  const metadata = await MetadataStore.open(await dirs.make());
  const timers = new TimerService({ store, index: new TimerIndex(metadata.sublevel('timers')), log: () => undefined });
  closers.push(() => store.close(), () => metadata.close(), () => timers.close());
  return { store, metadata, timers };
}

function delayed(deliverAt: number, text: string) {
  return rec({ type: RecordType.DELAYED, text, properties: { [SystemProperty.DELIVER_AT]: String(deliverAt) } });
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('TimerService', () => {
  it('releases due records in time order, each once', async () => {
    const { store, timers } = await boot(await dirs.make());
    timers.start();
    const now = Date.now();
    await timers.append([delayed(now + 150, 'second'), delayed(now + 50, 'first'), rec({ text: 'plain' })]);
    expect(store.maxOffset('orders', 0)).toBe(1);
    await until(() => store.maxOffset('orders', 0) === 3);
    const { records } = await store.readQueue('orders', 0, 0, 10);
    expect(records.map((r) => r.body.toString())).toEqual(['plain', 'first', 'second']);
    expect(records[2]!.storeTimestamp).toBeLessThan(now + 150); // the held record keeps its store time
    await new Promise((r) => setTimeout(r, 200));
    expect(store.maxOffset('orders', 0)).toBe(3);
    expect(await timers.pendingCount()).toBe(0);
  });

  it('after a crash with the index lost, re-indexes pending records and never re-releases a released one', async () => {
    const dataDir = await dirs.make();
    const a = await boot(dataDir);
    a.timers.start();
    const now = Date.now();
    await a.timers.append([delayed(now + 30, 'soon'), delayed(now + 3_600_000, 'in an hour')]);
    await until(() => a.store.maxOffset('orders', 0) === 1);
    // kill -9 before any checkpoint: the copy has the log (with the RELEASE) but not the level index.
    const b = await boot(await crashCopy(dataDir, await dirs.make()));
    expect(b.store.recovery.fromOffset).toBe(0);
    expect(await b.timers.rebuild()).toBe(1);
    b.timers.start();
    await new Promise((r) => setTimeout(r, 150));
    expect(b.store.maxOffset('orders', 0)).toBe(1);
    const { records } = await b.store.readQueue('orders', 0, 0, 10);
    expect(records.map((r) => r.body.toString())).toEqual(['soon']);
  });
});
