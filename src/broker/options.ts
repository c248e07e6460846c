import { InvalidArgumentError } from '../common/errors.js';
import type { Logger } from './logger.js';
import { stderrLogger } from './logger.js';

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
  flushIntervalMs?: number;
  /** a client silent for this long is disconnected and leaves its groups (default 30 s) */
  heartbeatTimeoutMs?: number;
  /** lease of a pulled message when the consumer names none (default 60 s) */
  defaultInvisibleMs?: number;
  /** redelivery delay after a NACK (default 1 s; retry schedules come with the retry/DLQ issue) */
  nackDelayMs?: number;
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
    flushIntervalMs: options.flushIntervalMs ?? 100,
    heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 30_000,
    defaultInvisibleMs: options.defaultInvisibleMs ?? 60_000,
    nackDelayMs: options.nackDelayMs ?? 1000,
    log: options.log ?? stderrLogger,
  };
  if (resolved.flush !== 'sync' && resolved.flush !== 'async') {
    throw new InvalidArgumentError(`flush must be sync or async, got ${String(resolved.flush)}`);
  }
  if (!Number.isInteger(resolved.port) || resolved.port < 0 || resolved.port > 65535) {
    throw new InvalidArgumentError(`port must be an integer from 0 to 65535, got ${resolved.port}`);
  }
  if (resolved.maxFrameSize <= resolved.maxMessageSize) {
    throw new InvalidArgumentError('maxFrameSize must be larger than maxMessageSize');
  }
  return resolved;
}
