import { InvalidArgumentError } from '../../common/errors.js';

/**
 * The contract between the idempotent-consumer wrapper and where it remembers keys.
 *
 * A key moves through: (absent) → processing → done → (absent, after its TTL).
 * - `begin` claims a key atomically: two concurrent calls for one key never both get 'new'.
 *   An absent or expired record becomes a 'processing' claim owned by `owner` that lapses after
 *   `leaseMs` (so a claim left by a crashed process does not block the key forever).
 * - `complete` records the key as done for `ttlMs`, whoever owns the claim now: the work happened.
 * - `abandon` drops the claim, but only if `owner` still holds it; a claim that lapsed and was
 *   taken by another delivery belongs to that delivery.
 */
export type ClaimResult = 'new' | 'processing' | 'done';

export interface IdempotencyStore {
  begin(key: string, owner: string, leaseMs: number): Promise<ClaimResult>;
  complete(key: string, owner: string, ttlMs: number): Promise<void>;
  abandon(key: string, owner: string): Promise<void>;
  /** Releases timers and resources the store opened itself. Optional. */
  close?(): Promise<void>;
}

/** One stored record. Short field names: a level store keeps many of them. */
export interface IdempotencyRecord {
  /** 'p' processing, 'd' done */
  s: 'p' | 'd';
  /** owner of a processing claim */
  o?: string;
  /** expiry, epoch ms */
  x: number;
}

/** What `begin` decides for an existing record (or none) at time `now`. */
export function classify(record: IdempotencyRecord | undefined, now: number): ClaimResult {
  if (record === undefined || record.x <= now) return 'new';
  return record.s === 'd' ? 'done' : 'processing';
}

export function validateDuration(value: number, name: string): void {
  if (!Number.isFinite(value) || value <= 0) throw new InvalidArgumentError(`${name} must be a positive number of milliseconds`);
}
