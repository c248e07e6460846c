import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConsumerGroup } from '../../../src/broker/consumer-group.js';
import { decodeRecord } from '../../../src/common/record-codec.js';
import { MessageStore, RecordType } from '../../../src/storage/index.js';

describe('ConsumerGroup.pull on a real store', () => {
  let dir = '';
  let store: MessageStore | undefined;
  afterEach(async () => {
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('fills one pull from every queue the member owns, not just the first with data', async () => {
    dir = await mkdtemp(join(tmpdir(), 'halfmq-cg-'));
    store = await MessageStore.open({ dataDir: dir, flush: 'async', log: () => undefined });
    const record = (queueId: number, i: number) => ({
      type: RecordType.NORMAL,
      topic: 't',
      queueId,
      msgId: `m${queueId}-${i}`,
      keys: [],
      properties: {},
      body: Buffer.from(`q${queueId}-${i}`),
      bornTimestamp: Date.now(),
      reconsumeTimes: 0,
    });
    await store.append([0, 1, 2, 3, 4].flatMap((i) => [record(0, i), record(1, i)]));
    // Retries and dead letters are not reached by a pull that succeeds.
    const group = new ConsumerGroup('g', {
      store,
      queueCount: () => 2,
      storedOffsets: new Map(),
      maxPullBytes: 1 << 20,
      retries: {} as never,
      deadLetters: {} as never,
      log: () => undefined,
    });
    await group.join({ id: 'a', clientId: 'a', address: 'test' }, { t: '*' }, 'earliest');
    // 8 of 10: the first queue gives its 5, the second the 3 that still fit.
    const got = await group.pull('a', 8, 0, 60_000);
    expect(got).toHaveLength(8);
    const perQueue = [0, 1].map((q) => got.filter((d) => d.queueId === q).length).sort();
    expect(perQueue).toEqual([3, 5]);
    const rest = await group.pull('a', 8, 0, 60_000);
    expect([...got, ...rest].map((d) => decodeRecord(d.bytes, d.physicalOffset).body.toString()).sort()).toEqual(
      ['q0-0', 'q0-1', 'q0-2', 'q0-3', 'q0-4', 'q1-0', 'q1-1', 'q1-2', 'q1-3', 'q1-4'].sort(),
    );
    expect(got.every((d) => d.reconsumeTimes === 0)).toBe(true);
    group.close();
  });
});
