import { InvalidArgumentError } from '../../common/errors.js';
import { parseEndpoint } from '../../client/endpoint.js';
import { parseBytes } from '../broker-config.js';

/**
 * `halfmq bench` options: what the flags mean per scenario, their defaults, and their checks. Pure,
 * so it is unit-tested without a broker. Every load loop is bounded by a message count and a time.
 */
export const SCENARIOS = ['produce', 'consume', 'e2e', 'tx', 'check', 'recovery', 'disk'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** Flags exactly as commander hands them over (strings, booleans for switches). */
export interface BenchFlags {
  server?: string;
  embedded?: boolean;
  messages?: string;
  size?: string;
  concurrency?: string;
  batch?: string;
  flush?: string;
  duration?: string;
  rate?: string;
  queues?: string;
  logBytes?: string;
  dir?: string;
  json?: boolean;
}

/** `none`: the disk scenario, which measures the file system alone. */
export type BenchTarget = { kind: 'embedded'; flush: 'sync' | 'async' } | { kind: 'server'; address: string } | { kind: 'none' };

export interface BenchOptions {
  scenario: Scenario;
  target: BenchTarget;
  /** messages (produce, consume, e2e), transactions (tx, check) to run */
  messages: number;
  /** body bytes */
  size: number;
  /** requests in flight (sends, transactions; for consume: pulls) */
  concurrency: number;
  /** messages per request (sendBatch size; for consume: most messages per pull) */
  batch: number;
  /** the measured phase stops after this long even if `messages` are not done */
  durationS: number;
  /** e2e: send at this many messages/s instead of at saturation; disk: records/s (default 10,000) */
  rate: number | undefined;
  queues: number;
  /** recovery only: bytes of commit log to write before the kill -9 */
  logBytes: number;
  /** disk only: the directory to measure (default the OS temp dir, where --embedded brokers keep data) */
  dir: string | undefined;
  json: boolean;
}

interface Defaults {
  messages: number;
  concurrency: number;
  batch: number;
}

const DEFAULTS: Record<Scenario, Defaults> = {
  produce: { messages: 100_000, concurrency: 256, batch: 1 },
  consume: { messages: 100_000, concurrency: 4, batch: 256 },
  e2e: { messages: 100_000, concurrency: 256, batch: 1 },
  // Past 50,000: the broker keeps that many resolved transactions, and only a longer run measures
  // the table full (a 20,000 default hid a cost that grew once it was).
  tx: { messages: 100_000, concurrency: 256, batch: 1 },
  check: { messages: 10_000, concurrency: 256, batch: 1 },
  recovery: { messages: 0, concurrency: 32, batch: 64 },
  disk: { messages: 0, concurrency: 1, batch: 1 },
};

const MAX_SIZE = 4 * 1024 * 1024;
const MAX_PULL_BATCH = 1024;
const DEFAULT_DURATION_S = 60;
const DEFAULT_RATE_SECONDS = 10;
const DEFAULT_DISK_RATE = 10_000;
const DEFAULT_DISK_SECONDS = 5;
/** disk zero-fills its group-commit file first: past this, it would be a test of patience */
const MAX_DISK_BYTES = 2 * 1024 ** 3;

export function isScenario(name: string): name is Scenario {
  return (SCENARIOS as readonly string[]).includes(name);
}

export function resolveBenchOptions(scenario: string, flags: BenchFlags): BenchOptions {
  if (!isScenario(scenario)) throw new InvalidArgumentError(`unknown scenario "${scenario}"; expected one of ${SCENARIOS.join(', ')}`);
  const d = DEFAULTS[scenario];
  if (flags.server !== undefined && flags.embedded) throw new InvalidArgumentError('--server and --embedded are exclusive');
  const flush = flags.flush ?? 'sync';
  if (flush !== 'sync' && flush !== 'async') throw new InvalidArgumentError(`--flush must be sync or async, got "${flush}"`);
  let target: BenchTarget;
  if (scenario === 'disk') {
    if (flags.server !== undefined || flags.embedded || flags.flush !== undefined) {
      throw new InvalidArgumentError('disk measures the file system alone: --server, --embedded and --flush do not apply');
    }
    target = { kind: 'none' };
  } else if (flags.server !== undefined) {
    if (flags.flush !== undefined) throw new InvalidArgumentError('--flush applies to an --embedded broker; a --server broker uses its own flush setting');
    target = { kind: 'server', address: parseEndpoint(flags.server).address };
  } else {
    target = { kind: 'embedded', flush };
  }
  if (scenario === 'recovery' && target.kind !== 'embedded') throw new InvalidArgumentError('recovery kills the broker with kill -9, so it needs --embedded');
  if (scenario === 'check' && target.kind !== 'embedded') {
    throw new InvalidArgumentError('check needs --embedded: it starts the broker with a short transaction check interval');
  }
  const size = flags.size !== undefined ? parseBytes(flags.size, '--size') : 1024;
  if (size > MAX_SIZE) throw new InvalidArgumentError(`--size must be at most ${MAX_SIZE} bytes`);
  const batch = count(flags.batch, '--batch') ?? d.batch;
  if (scenario === 'consume' && batch > MAX_PULL_BATCH) throw new InvalidArgumentError(`--batch for consume is the pull size, at most ${MAX_PULL_BATCH}`);
  let rate = count(flags.rate, '--rate');
  if (rate !== undefined && scenario !== 'e2e' && scenario !== 'disk') throw new InvalidArgumentError('--rate applies to the e2e and disk scenarios only');
  if (scenario === 'disk') rate ??= DEFAULT_DISK_RATE;
  const durationS = positiveNumber(flags.duration, '--duration') ?? (scenario === 'disk' ? DEFAULT_DISK_SECONDS : DEFAULT_DURATION_S);
  let messages = count(flags.messages, '--messages');
  if (messages === undefined) {
    messages = d.messages;
    // At a fixed rate the natural bound is time: about ten seconds of it unless --duration says less.
    if (rate !== undefined) messages = Math.max(1, Math.round(rate * Math.min(durationS, DEFAULT_RATE_SECONDS)));
  }
  if (scenario === 'disk' && messages * size > MAX_DISK_BYTES) {
    throw new InvalidArgumentError(`disk would write ${messages * size} bytes (more than 2 GiB): lower --rate, --duration, --messages or --size`);
  }
  const logBytes = flags.logBytes !== undefined ? parseBytes(flags.logBytes, '--log-bytes') : 1024 ** 3;
  if (flags.logBytes !== undefined && scenario !== 'recovery') throw new InvalidArgumentError('--log-bytes applies to the recovery scenario only');
  if (flags.dir !== undefined && scenario !== 'disk') throw new InvalidArgumentError('--dir applies to the disk scenario only');
  return {
    scenario,
    target,
    messages,
    size,
    concurrency: count(flags.concurrency, '--concurrency') ?? d.concurrency,
    batch,
    durationS,
    rate,
    queues: count(flags.queues, '--queues') ?? 8,
    logBytes,
    dir: flags.dir,
    json: flags.json === true,
  };
}

function count(raw: string | undefined, label: string): number | undefined {
  if (raw === undefined) return undefined;
  const text = raw.trim().replace(/_/g, '');
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${label} must be a positive integer, got "${raw}"`);
  return n;
}

function positiveNumber(raw: string | undefined, label: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw.trim());
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`${label} must be a positive number of seconds, got "${raw}"`);
  return n;
}
