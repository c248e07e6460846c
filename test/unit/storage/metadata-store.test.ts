import { afterEach, describe, expect, it } from 'vitest';
import { IllegalStateError, InvalidArgumentError } from '../../../src/common/errors.js';
import { MetadataStore } from '../../../src/storage/index.js';
import { tempDirs } from './helpers.js';

const dirs = tempDirs();
const open: MetadataStore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
  await dirs.cleanup();
});

async function openMeta(dataDir: string): Promise<MetadataStore> {
  const meta = await MetadataStore.open(dataDir);
  open.push(meta);
  return meta;
}

describe('MetadataStore', () => {
  it('persists topics and offsets across reopen', async () => {
    const dataDir = await dirs.make();
    const meta = await openMeta(dataDir);
    await meta.putTopic({ name: 'points', queues: 4, createdAt: 2 });
    await meta.putTopic({ name: 'orders', queues: 8, createdAt: 1 });
    await meta.commitOffsets([
      { group: 'g1', topic: 'orders', queueId: 0, offset: 5 },
      { group: 'g1', topic: 'orders', queueId: 1, offset: 7 },
      { group: 'g2', topic: 'points', queueId: 3, offset: 11 },
      { group: 'g10', topic: 'orders', queueId: 0, offset: 1 },
    ]);
    await meta.commitOffsets([{ group: 'g1', topic: 'orders', queueId: 0, offset: 6 }]);
    await meta.close();
    open.splice(0);

    const again = await openMeta(dataDir);
    expect(again.getTopic('orders')).toEqual({ name: 'orders', queues: 8, createdAt: 1 });
    expect(again.getTopic('missing')).toBeUndefined();
    expect(again.listTopics().map((t) => t.name)).toEqual(['orders', 'points']);
    expect(await again.loadOffsets('g1')).toEqual(new Map([['orders/0', 6], ['orders/1', 7]]));
    expect(await again.loadOffsets('g2')).toEqual(new Map([['points/3', 11]]));
    expect(await again.loadOffsets('nobody')).toEqual(new Map());
    expect(await again.listGroups()).toEqual(['g1', 'g10', 'g2']);
  });

  it('deleting a topic removes its config and its committed offsets', async () => {
    const meta = await openMeta(await dirs.make());
    await meta.putTopic({ name: 'orders', queues: 2, createdAt: 1 });
    await meta.putTopic({ name: 'orders-x', queues: 2, createdAt: 1 });
    await meta.commitOffsets([
      { group: 'g', topic: 'orders', queueId: 0, offset: 3 },
      { group: 'g', topic: 'orders-x', queueId: 0, offset: 4 },
    ]);
    await meta.deleteTopic('orders');
    expect(meta.getTopic('orders')).toBeUndefined();
    expect(meta.listTopics().map((t) => t.name)).toEqual(['orders-x']);
    expect(await meta.loadOffsets('g')).toEqual(new Map([['orders-x/0', 4]]));
  });

  it('offers JSON sublevels for later features and guards its own names', async () => {
    const dataDir = await dirs.make();
    const meta = await openMeta(dataDir);
    const tx = meta.sublevel<{ state: string }>('tx-state');
    await tx.put('half-1', { state: 'PREPARED' });
    expect(() => meta.sublevel('topics')).toThrow(InvalidArgumentError);
    expect(() => meta.sublevel('Bad Name')).toThrow(InvalidArgumentError);
    await meta.close();
    open.splice(0);
    const again = await openMeta(dataDir);
    expect(await again.sublevel<{ state: string }>('tx-state').get('half-1')).toEqual({ state: 'PREPARED' });
    expect(again.listTopics()).toEqual([]);
  });

  it('validates input and refuses calls after close', async () => {
    const meta = await openMeta(await dirs.make());
    await expect(meta.putTopic({ name: '', queues: 1, createdAt: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(meta.commitOffsets([{ group: 'g', topic: 't', queueId: 0, offset: -1 }])).rejects.toBeInstanceOf(InvalidArgumentError);
    await meta.close();
    expect(() => meta.getTopic('x')).toThrow(IllegalStateError);
    await expect(meta.loadOffsets('g')).rejects.toBeInstanceOf(IllegalStateError);
  });
});
