import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Level } from 'level';
import { afterEach, describe, expect, it } from 'vitest';
import { DuplicateInProgressError, InvalidArgumentError, isRetriable } from '../../../src/common/errors.js';
import type { ReceivedMessage } from '../../../src/common/message.js';
import {
  LevelIdempotencyStore,
  MemoryIdempotencyStore,
  idempotent,
} from '../../../src/client/idempotent-consumer.js';
import type { IdempotencyStore } from '../../../src/client/idempotent-consumer.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'halfmq-idem-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A clock the test moves by hand. */
function manualClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function message(msgId: string, keys: string[] = []): ReceivedMessage {
  return {
    msgId,
    topic: 'orders',
    queueId: 0,
    queueOffset: 0,
    keys,
    properties: {},
    body: Buffer.from('{}'),
    bornTimestamp: 0,
    storeTimestamp: 0,
    reconsumeTimes: 0,
  };
}

type Factory = (now: () => number) => Promise<IdempotencyStore>;

const factories: Record<string, Factory> = {
  memory: async (now) => {
    const store = new MemoryIdempotencyStore({ now });
    cleanup.push(() => store.close());
    return store;
  },
  'level (path)': async (now) => {
    const store = new LevelIdempotencyStore({ path: path.join(await tempDir(), 'idem'), now });
    cleanup.push(() => store.close());
    return store;
  },
  'level (user db, json encoding)': async (now) => {
    const db = new Level<string, unknown>(path.join(await tempDir(), 'db'), { valueEncoding: 'json' });
    cleanup.push(() => db.close());
    const store = new LevelIdempotencyStore({ db: db as never, prefix: 'dedupe!', now });
    cleanup.push(() => store.close());
    return store;
  },
};

// The same conformance suite runs against every store.
for (const [name, create] of Object.entries(factories)) {
  describe(`IdempotencyStore conformance: ${name}`, () => {
    it('claims a new key once, then reports processing, then done until the TTL passes', async () => {
      const clock = manualClock();
      const store = await create(clock.now);
      expect(await store.begin('k', 'a', 1_000)).toBe('new');
      expect(await store.begin('k', 'b', 1_000)).toBe('processing');
      await store.complete('k', 'a', 5_000);
      expect(await store.begin('k', 'c', 1_000)).toBe('done');
      clock.advance(4_999);
      expect(await store.begin('k', 'c', 1_000)).toBe('done');
      clock.advance(1);
      expect(await store.begin('k', 'd', 1_000)).toBe('new');
    });

    it('lets a processing claim lapse after its lease (a crashed consumer does not block the key forever)', async () => {
      const clock = manualClock();
      const store = await create(clock.now);
      expect(await store.begin('k', 'crashed', 500)).toBe('new');
      clock.advance(499);
      expect(await store.begin('k', 'b', 500)).toBe('processing');
      clock.advance(1);
      expect(await store.begin('k', 'b', 500)).toBe('new');
    });

    it('abandon releases only the claim the caller still owns', async () => {
      const clock = manualClock();
      const store = await create(clock.now);
      expect(await store.begin('k', 'a', 500)).toBe('new');
      clock.advance(500); // a's claim lapses, b takes the key over
      expect(await store.begin('k', 'b', 500)).toBe('new');
      await store.abandon('k', 'a'); // late failure of a must not free b's claim
      expect(await store.begin('k', 'c', 500)).toBe('processing');
      await store.abandon('k', 'b');
      expect(await store.begin('k', 'c', 500)).toBe('new');
    });

    it('abandon does not undo a completed key', async () => {
      const store = await create(Date.now);
      expect(await store.begin('k', 'a', 500)).toBe('new');
      await store.complete('k', 'a', 10_000);
      await store.abandon('k', 'a');
      expect(await store.begin('k', 'b', 500)).toBe('done');
    });

    it('gives exactly one of many concurrent claims of one key', async () => {
      const store = await create(Date.now);
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => store.begin('hot', `o${i}`, 10_000)));
      expect(results.filter((r) => r === 'new')).toHaveLength(1);
      expect(results.filter((r) => r === 'processing')).toHaveLength(49);
    });

    it('keeps keys apart', async () => {
      const store = await create(Date.now);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.begin(`k${i}`, 'o', 10_000)));
      expect(results.every((r) => r === 'new')).toBe(true);
    });
  });
}

describe('MemoryIdempotencyStore', () => {
  it('stays within maxEntries, dropping the oldest records first', async () => {
    const store = new MemoryIdempotencyStore({ maxEntries: 3 });
    cleanup.push(() => store.close());
    for (const k of ['a', 'b', 'c', 'd']) {
      await store.begin(k, 'o', 10_000);
      await store.complete(k, 'o', 10_000);
    }
    expect(store.size).toBe(3);
    expect(await store.begin('b', 'o', 10_000)).toBe('done');
    expect(await store.begin('a', 'o', 10_000)).toBe('new'); // evicted
  });

  it('sweeps expired records', async () => {
    const clock = manualClock();
    const store = new MemoryIdempotencyStore({ now: clock.now });
    cleanup.push(() => store.close());
    await store.begin('short', 'o', 100);
    await store.complete('long', 'o', 10_000);
    clock.advance(100);
    expect(store.sweep()).toBe(1);
    expect(store.size).toBe(1);
  });

  it('rejects a bad maxEntries', () => {
    expect(() => new MemoryIdempotencyStore({ maxEntries: 0 })).toThrow(InvalidArgumentError);
  });
});

describe('LevelIdempotencyStore', () => {
  it('remembers done keys across a restart; a claim left by a crash lapses after its lease', async () => {
    const dir = path.join(await tempDir(), 'idem');
    const clock = manualClock();
    const first = new LevelIdempotencyStore({ path: dir, now: clock.now });
    expect(await first.begin('done-key', 'a', 1_000)).toBe('new');
    await first.complete('done-key', 'a', 60_000);
    expect(await first.begin('stuck-key', 'a', 1_000)).toBe('new'); // the process "crashes" here
    await first.close();

    const second = new LevelIdempotencyStore({ path: dir, now: clock.now });
    cleanup.push(() => second.close());
    expect(await second.begin('done-key', 'b', 1_000)).toBe('done');
    expect(await second.begin('stuck-key', 'b', 1_000)).toBe('processing');
    clock.advance(1_000);
    expect(await second.begin('stuck-key', 'b', 1_000)).toBe('new');
  });

  it('sweeps expired records and leaves the rest of a shared database alone', async () => {
    const clock = manualClock();
    const db = new Level<string, string>(path.join(await tempDir(), 'db'), { valueEncoding: 'utf8' });
    cleanup.push(() => db.close());
    await db.put('orders!1', 'not ours');
    const store = new LevelIdempotencyStore({ db, now: clock.now, sweepIntervalMs: 0 });
    await store.complete('old', 'o', 100);
    await store.complete('new', 'o', 10_000);
    clock.advance(100);
    expect(await store.sweep()).toBe(1);
    await store.close();
    expect(db.status).toBe('open'); // the caller's database stays open
    expect(await db.get('orders!1')).toBe('not ours');
    expect(await db.get('idem!old')).toBeUndefined();
    expect(await db.get('idem!new')).toBeDefined();
  });

  it('needs exactly one of db or path', () => {
    expect(() => new LevelIdempotencyStore({})).toThrow(InvalidArgumentError);
    expect(() => new LevelIdempotencyStore({ path: '/tmp/x', db: {} as never })).toThrow(InvalidArgumentError);
  });
});

describe('idempotent()', () => {
  it('runs the handler once per message id, however often it is delivered', async () => {
    const store = new MemoryIdempotencyStore();
    cleanup.push(() => store.close());
    const seen: string[] = [];
    const duplicates: string[] = [];
    const handle = idempotent(async (m: ReceivedMessage) => void seen.push(m.msgId), {
      store,
      onDuplicate: (_m, key) => duplicates.push(key),
    });
    expect(await handle(message('m1'))).toBe('processed');
    expect(await handle(message('m1'))).toBe('duplicate');
    expect(await handle(message('m2'))).toBe('processed');
    expect(seen).toEqual(['m1', 'm2']);
    expect(duplicates).toEqual(['m1']);
  });

  it('dedupes by a business key across different message ids', async () => {
    const store = new MemoryIdempotencyStore();
    cleanup.push(() => store.close());
    let runs = 0;
    const handle = idempotent(() => void runs++, { store, key: (m) => m.keys[0] });
    await handle(message('m1', ['order-7']));
    await handle(message('m2', ['order-7']));
    expect(runs).toBe(1);
    await expect(handle(message('m3', []))).rejects.toThrow(InvalidArgumentError);
  });

  it('makes a concurrent duplicate fail with a retriable error instead of acking unfinished work', async () => {
    const store = new MemoryIdempotencyStore();
    cleanup.push(() => store.close());
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let runs = 0;
    const handle = idempotent(async () => {
      runs++;
      await gate;
    }, { store });
    const first = handle(message('m1'));
    const second = handle(message('m1'));
    await expect(second).rejects.toBeInstanceOf(DuplicateInProgressError);
    await expect(second).rejects.toMatchObject({ retriable: true, code: 'DUPLICATE_IN_PROGRESS' });
    release();
    expect(await first).toBe('processed');
    expect(await handle(message('m1'))).toBe('duplicate');
    expect(runs).toBe(1);
  });

  it('releases the key when the handler throws, so the redelivery runs it again', async () => {
    const store = new MemoryIdempotencyStore();
    cleanup.push(() => store.close());
    let calls = 0;
    const handle = idempotent(() => {
      if (++calls === 1) throw new Error('db down');
    }, { store });
    await expect(handle(message('m1'))).rejects.toThrow('db down');
    expect(await handle(message('m1'))).toBe('processed');
    expect(await handle(message('m1'))).toBe('duplicate');
    expect(calls).toBe(2);
  });

  it('acks finished work even when the store cannot record it, and reports that', async () => {
    const errors: unknown[] = [];
    const store: IdempotencyStore = {
      begin: async () => 'new',
      complete: async () => {
        throw new Error('disk full');
      },
      abandon: async () => undefined,
    };
    const handle = idempotent(() => undefined, { store, onStoreError: (e) => errors.push(e) });
    expect(await handle(message('m1'))).toBe('processed');
    expect(errors).toHaveLength(1);
  });

  it('lets a claim from a crashed run lapse after processingTimeoutMs', async () => {
    const clock = manualClock();
    const store = new MemoryIdempotencyStore({ now: clock.now });
    cleanup.push(() => store.close());
    await store.begin('m1', 'crashed-process', 2_000);
    const handle = idempotent(() => undefined, { store, processingTimeoutMs: 2_000 });
    const err = await handle(message('m1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DuplicateInProgressError);
    expect(isRetriable(err)).toBe(true);
    clock.advance(2_000);
    expect(await handle(message('m1'))).toBe('processed');
  });

  it('validates its options', () => {
    const store = new MemoryIdempotencyStore();
    expect(() => idempotent(undefined as never, { store })).toThrow(InvalidArgumentError);
    expect(() => idempotent(() => undefined, { store: {} as never })).toThrow(InvalidArgumentError);
    expect(() => idempotent(() => undefined, { store, ttlMs: 0 })).toThrow(InvalidArgumentError);
    expect(() => idempotent(() => undefined, { store, processingTimeoutMs: -1 })).toThrow(InvalidArgumentError);
  });
});
