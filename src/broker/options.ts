import { InvalidArgumentError } from '../common/errors.js';
import type { Logger } from './logger.js';
import { stderrLogger } from './logger.js';
import { DEFAULT_RETRY_DELAYS, parseRetryDelays } from './retry-policy.js';

export interface BrokerOptions {
  host?: string;
  port?: number;
  dataDir: string;
  flush?: 'sync' | 'async';
  /** create a topic on first send (default true, as RocketMQ out of the box) */
  autoCreateTopics?: boolean;
  defaultQueues?: number;
  /** body limit in bytes (default 4 MiB) */
  maxMessageSize?: number;
  /** frame limit in bytes (default: 16 MiB, or more when maxMessageSize needs it) */
  maxFrameSize?: number;
  segmentSize?: number;
  /** zero-filled commit-log space kept ahead of the data (default 16 MiB; 0 = off) */
  preallocateBytes?: number;
  flushIntervalMs?: number;
  /** a client silent for this long is disconnected and leaves its groups (default 30 s) */
  heartbeatTimeoutMs?: number;
  /** lease of a pulled message when the consumer names none (default 60 s) */
  defaultInvisibleMs?: number;
  /**
   * Delays before each retry of a failed message, e.g. '1s,2s,5s' or [1000, 2000, 5000]; the last
   * repeats. Default RocketMQ's: 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h.
   */
  retryDelays?: string | readonly number[];
  /** a transaction still PREPARED this long after its first half is checked (default 6 s) */
  txTimeoutMs?: number;
  /** then re-checked every this long (default 30 s) */
  txCheckIntervalMs?: number;
  /** unanswered checks before a transaction is PARKED for an operator (default 15) */
  txCheckMax?: number;
  log?: Logger;
}

export type ResolvedBrokerOptions = Required<BrokerOptions>;

export function resolveBrokerOptions(options: BrokerOptions): ResolvedBrokerOptions {
  if (!options.dataDir) throw new InvalidArgumentError('dataDir is required');
  const maxMessageSize = options.maxMessageSize ?? 4 * 1024 * 1024;
  const resolved: ResolvedBrokerOptions = {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 9876,
    dataDir: options.dataDir,
    flush: options.flush ?? 'sync',
    autoCreateTopics: options.autoCreateTopics ?? true,
    defaultQueues: options.defaultQueues ?? 4,
    maxMessageSize,
    maxFrameSize: options.maxFrameSize ?? Math.max(16 * 1024 * 1024, maxMessageSize + 1024 * 1024),
    segmentSize: options.segmentSize ?? 1024 * 1024 * 1024,
    preallocateBytes: options.preallocateBytes ?? 16 * 1024 * 1024,
    flushIntervalMs: options.flushIntervalMs ?? 100,
    heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 30_000,
    defaultInvisibleMs: options.defaultInvisibleMs ?? 60_000,
    retryDelays: parseRetryDelays(options.retryDelays ?? DEFAULT_RETRY_DELAYS),
    txTimeoutMs: options.txTimeoutMs ?? 6_000,
    txCheckIntervalMs: options.txCheckIntervalMs ?? 30_000,
    txCheckMax: options.txCheckMax ?? 15,
    log: options.log ?? stderrLogger,
  };
  if (resolved.flush !== 'sync' && resolved.flush !== 'async') {
    throw new InvalidArgumentError(`flush must be sync or async, got ${String(resolved.flush)}`);
  }
  if (!Number.isInteger(resolved.port) || resolved.port < 0 || resolved.port > 65535) {
    throw new InvalidArgumentError(`port must be an integer from 0 to 65535, got ${resolved.port}`);
  }
  for (const key of ['txTimeoutMs', 'txCheckIntervalMs'] as const) {
    if (!Number.isInteger(resolved[key]) || resolved[key] < 1) throw new InvalidArgumentError(`${key} must be a positive integer (ms), got ${resolved[key]}`);
  }
  if (!Number.isSafeInteger(resolved.preallocateBytes) || resolved.preallocateBytes < 0) {
    throw new InvalidArgumentError(`preallocateBytes must be a non-negative integer, got ${resolved.preallocateBytes}`);
  }
  if (!Number.isInteger(resolved.txCheckMax) || resolved.txCheckMax < 0) {
    throw new InvalidArgumentError(`txCheckMax must be a non-negative integer, got ${resolved.txCheckMax}`);
  }
  if (resolved.maxFrameSize <= resolved.maxMessageSize) {
    throw new InvalidArgumentError('maxFrameSize must be larger than maxMessageSize');
  }
  return resolved;
}
