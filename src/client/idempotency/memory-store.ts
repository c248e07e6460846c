import { InvalidArgumentError } from '../../common/errors.js';
import { classify, validateDuration } from './store.js';
import type { ClaimResult, IdempotencyRecord, IdempotencyStore } from './store.js';

export interface MemoryIdempotencyStoreOptions {
  /** Most keys kept; past it the oldest records are dropped first. Default 100 000. */
  maxEntries?: number;
  /** How often expired records are swept out. Default 60 s. The timer never keeps a process alive. */
  sweepIntervalMs?: number;
  /** Clock, for tests. Default Date.now. */
  now?: () => number;
}

const DEFAULT_MAX_ENTRIES = 100_000;
const DEFAULT_SWEEP_INTERVAL_MS = 60_000;

/**
 * Keys in a Map, for one process. Forgotten on restart, so it dedupes redeliveries within a
 * process's life only; use LevelIdempotencyStore (or a table in your own database) to survive one.
 *
 * Every method does its check-and-set without awaiting in between, so claims are atomic within
 * the process. The Map's insertion order doubles as age order: a write re-inserts the key, so
 * eviction at `maxEntries` drops the least recently written records.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly records = new Map<string, IdempotencyRecord>();
  private readonly maxEntries: number;
  private readonly sweepIntervalMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: MemoryIdempotencyStoreOptions = {}) {
    const max = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (!Number.isInteger(max) || max < 1) throw new InvalidArgumentError('maxEntries must be a positive integer');
    this.maxEntries = max;
    this.sweepIntervalMs = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    validateDuration(this.sweepIntervalMs, 'sweepIntervalMs');
    this.now = options.now ?? Date.now;
  }

  /** Records held now, expired ones included until the next sweep. */
  get size(): number {
    return this.records.size;
  }

  async begin(key: string, owner: string, leaseMs: number): Promise<ClaimResult> {
    const now = this.now();
    const result = classify(this.records.get(key), now);
    if (result === 'new') this.write(key, { s: 'p', o: owner, x: now + leaseMs });
    return result;
  }

  async complete(key: string, _owner: string, ttlMs: number): Promise<void> {
    this.write(key, { s: 'd', x: this.now() + ttlMs });
  }

  async abandon(key: string, owner: string): Promise<void> {
    const record = this.records.get(key);
    if (record?.s === 'p' && record.o === owner) this.records.delete(key);
  }

  /** Drops expired records; returns how many. Runs on its own every `sweepIntervalMs`. */
  sweep(): number {
    const now = this.now();
    let removed = 0;
    for (const [key, record] of this.records) {
      if (record.x <= now) {
        this.records.delete(key);
        removed++;
      }
    }
    return removed;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private write(key: string, record: IdempotencyRecord): void {
    this.records.delete(key);
    this.records.set(key, record);
    while (this.records.size > this.maxEntries) {
      const oldest = this.records.keys().next();
      if (oldest.done === true) break;
      this.records.delete(oldest.value);
    }
    if (this.timer === undefined) {
      // Started on first use, not in the constructor: a store that is never used owns no timer.
      this.timer = setInterval(() => this.sweep(), this.sweepIntervalMs);
      this.timer.unref();
    }
  }
}
