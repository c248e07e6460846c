import { InvalidArgumentError } from '../../common/errors.js';
import { classify, validateDuration } from './store.js';
import type { ClaimResult, IdempotencyRecord, IdempotencyStore } from './store.js';

/**
 * The part of an `abstract-level` database (level, classic-level, memory-level, a sublevel) this
 * store uses. Values are written as JSON strings; a database with a `json` or `buffer` value
 * encoding works as well, since what is read back is turned into a string before parsing.
 */
export interface LevelLikeDatabase {
  get(key: string): Promise<unknown>;
  put(key: string, value: string): Promise<void>;
  del(key: string): Promise<void>;
  /** Used by `sweep()`; without it expired records are only replaced, never removed. */
  iterator?(options: { gte: string; lt: string }): AsyncIterable<[unknown, unknown]>;
  close?(): Promise<void>;
}

export interface LevelIdempotencyStoreOptions {
  /** An open (or auto-opening) level-compatible database the caller owns; `close()` leaves it open. */
  db?: LevelLikeDatabase;
  /** Or a directory: the store opens a `level` database there and closes it on `close()`. */
  path?: string;
  /** Prepended to every key, so the store can share a database. Default 'idem!'. */
  prefix?: string;
  /** How often expired records are swept out (needs `iterator`). Default 10 min; 0 turns it off. */
  sweepIntervalMs?: number;
  /** Clock, for tests. Default Date.now. */
  now?: () => number;
}

const DEFAULT_PREFIX = 'idem!';
const DEFAULT_SWEEP_INTERVAL_MS = 10 * 60_000;

/**
 * Keys in a `level` database, so they survive a restart: a message redelivered after the consumer
 * crashed is still recognised. A claim the crashed process left behind ('processing') lapses after
 * its lease (`processingTimeoutMs` of the wrapper); until then redeliveries of that key are nacked.
 *
 * level has no compare-and-set, so claims are made atomic by serialising the operations on each
 * key inside this object. A level database is opened by one process at a time, so that is enough
 * as long as one store object per database is used.
 */
export class LevelIdempotencyStore implements IdempotencyStore {
  private readonly prefix: string;
  private readonly now: () => number;
  private readonly sweepIntervalMs: number;
  private readonly ownsDb: boolean;
  private readonly path: string | undefined;
  private dbPromise: Promise<LevelLikeDatabase> | undefined;
  /** Tail of the operation chain per key; removed when the chain drains. */
  private readonly locks = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: LevelIdempotencyStoreOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('LevelIdempotencyStore needs { db } or { path }');
    const { db, path } = options;
    if ((db === undefined) === (path === undefined)) throw new InvalidArgumentError('LevelIdempotencyStore needs exactly one of db or path');
    if (db !== undefined && (typeof db.get !== 'function' || typeof db.put !== 'function' || typeof db.del !== 'function')) {
      throw new InvalidArgumentError('db must be a level-compatible database (get, put, del)');
    }
    if (path !== undefined && (typeof path !== 'string' || path === '')) throw new InvalidArgumentError('path must be a non-empty string');
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    this.now = options.now ?? Date.now;
    this.sweepIntervalMs = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    if (this.sweepIntervalMs !== 0) validateDuration(this.sweepIntervalMs, 'sweepIntervalMs');
    this.ownsDb = db === undefined;
    this.path = path;
    if (db !== undefined) this.dbPromise = Promise.resolve(db);
  }

  begin(key: string, owner: string, leaseMs: number): Promise<ClaimResult> {
    return this.withKey(key, async (db, k) => {
      const now = this.now();
      const result = classify(await read(db, k), now);
      if (result === 'new') await db.put(k, JSON.stringify({ s: 'p', o: owner, x: now + leaseMs } satisfies IdempotencyRecord));
      return result;
    });
  }

  complete(key: string, _owner: string, ttlMs: number): Promise<void> {
    return this.withKey(key, async (db, k) => {
      await db.put(k, JSON.stringify({ s: 'd', x: this.now() + ttlMs } satisfies IdempotencyRecord));
    });
  }

  abandon(key: string, owner: string): Promise<void> {
    return this.withKey(key, async (db, k) => {
      const record = await read(db, k);
      if (record?.s === 'p' && record.o === owner) await db.del(k);
    });
  }

  /** Deletes expired records; returns how many. Runs on its own every `sweepIntervalMs`. */
  async sweep(): Promise<number> {
    const db = await this.database();
    if (typeof db.iterator !== 'function') return 0;
    const now = this.now();
    const expired: string[] = [];
    for await (const [key, value] of db.iterator({ gte: this.prefix, lt: `${this.prefix}\xff` })) {
      const record = parse(value);
      if (record === undefined || record.x <= now) expired.push(String(key));
    }
    let removed = 0;
    for (const k of expired) {
      // Re-checked under the key's lock: a record may have been claimed again since the scan.
      removed += await this.withRawKey(k, async (d) => {
        const record = await read(d, k);
        if (record !== undefined && record.x > this.now()) return 0;
        await d.del(k);
        return 1;
      });
    }
    return removed;
  }

  /** Stops the sweeper; closes the database if the store opened it (from `path`). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.locks.values()]);
    if (this.ownsDb && this.dbPromise) {
      const db = await this.dbPromise.catch(() => undefined);
      await db?.close?.();
    }
  }

  private withKey<T>(key: string, fn: (db: LevelLikeDatabase, storedKey: string) => Promise<T>): Promise<T> {
    if (typeof key !== 'string' || key === '') return Promise.reject(new InvalidArgumentError('idempotency key must be a non-empty string'));
    const k = this.prefix + key;
    return this.withRawKey(k, (db) => fn(db, k));
  }

  private withRawKey<T>(k: string, fn: (db: LevelLikeDatabase) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new InvalidArgumentError('the idempotency store is closed'));
    const previous = this.locks.get(k) ?? Promise.resolve();
    const run = previous.then(async () => fn(await this.database()));
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(k, tail);
    void tail.then(() => {
      if (this.locks.get(k) === tail) this.locks.delete(k);
    });
    return run;
  }

  private database(): Promise<LevelLikeDatabase> {
    if (this.dbPromise === undefined) {
      const path = this.path!;
      this.dbPromise = import('level').then(async ({ Level }) => {
        const db = new Level<string, string>(path, { valueEncoding: 'utf8' });
        await db.open();
        return db as unknown as LevelLikeDatabase;
      });
      // A failed open is retried by the next operation instead of being cached.
      this.dbPromise.catch(() => {
        if (this.ownsDb) this.dbPromise = undefined;
      });
    }
    if (this.timer === undefined && this.sweepIntervalMs > 0 && !this.closed) {
      this.timer = setInterval(() => void this.sweep().catch(() => undefined), this.sweepIntervalMs);
      this.timer.unref();
    }
    return this.dbPromise;
  }
}

async function read(db: LevelLikeDatabase, k: string): Promise<IdempotencyRecord | undefined> {
  let value: unknown;
  try {
    value = await db.get(k);
  } catch (err) {
    // abstract-level before v2 (and some wrappers) reject a missing key instead of resolving undefined.
    if ((err as { code?: unknown; notFound?: unknown }).code === 'LEVEL_NOT_FOUND' || (err as { notFound?: unknown }).notFound === true) {
      return undefined;
    }
    throw err;
  }
  return parse(value);
}

/** A record, or undefined for a missing or unreadable value (treated as absent: the key may run again). */
function parse(value: unknown): IdempotencyRecord | undefined {
  if (value === undefined || value === null) return undefined;
  try {
    const r = JSON.parse(typeof value === 'string' ? value : String(value)) as Partial<IdempotencyRecord>;
    if ((r.s === 'p' || r.s === 'd') && typeof r.x === 'number') return r as IdempotencyRecord;
  } catch {
    // fall through
  }
  return undefined;
}
