import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from '../common/errors.js';

/**
 * Resolves the broker command's settings from four sources, highest precedence first:
 * CLI flags > environment (HALFMQ_*) > config file (JSON, camelCase keys) > defaults.
 * Pure apart from `loadConfigFile`, so precedence is unit-testable without a process.
 */
export interface BrokerConfig {
  host: string;
  port: number;
  /** data directory (`data` in flags, env and file) */
  dataDir: string;
  flush: 'sync' | 'async';
  autoCreateTopics: boolean;
  defaultQueues: number;
  /** undefined: the broker's default */
  maxMessageSize?: number;
  /** undefined: the broker's default */
  segmentSize?: number;
  /** commit-log free space kept ahead of the data; 0 = off; undefined: the broker's default */
  preallocateBytes?: number;
  /** e.g. `1s,2s,5s`; undefined: the broker's default (RocketMQ's schedule) */
  retryDelays?: string;
  /** transaction check timing; undefined: the broker's defaults (6 s, 30 s, 15) */
  txTimeoutMs?: number;
  txCheckIntervalMs?: number;
  txCheckMax?: number;
  /** a client silent this long loses its group membership; undefined: the broker's default (30 s) */
  heartbeatTimeoutMs?: number;
}

export type ConfigSource = 'flag' | 'env' | 'file' | 'default';

export interface ResolvedBrokerConfig {
  config: BrokerConfig;
  /** where each setting came from (for the startup log) */
  sources: Record<ConfigKey, ConfigSource>;
}

/** Flags as commander hands them over: raw strings, undefined when not given. */
export type BrokerFlags = Partial<Record<ConfigKey, string>>;

type Kind = 'string' | 'port' | 'flush' | 'boolean' | 'count' | 'bytes' | 'bytesOrZero';

/** One row per setting: its flag, its env var, how to parse it, its default. */
const SETTINGS = {
  host: { flag: '--host', env: 'HALFMQ_HOST', kind: 'string', fallback: '127.0.0.1' },
  port: { flag: '--port', env: 'HALFMQ_PORT', kind: 'port', fallback: 9876 },
  data: { flag: '--data', env: 'HALFMQ_DATA', kind: 'string', fallback: './data' },
  flush: { flag: '--flush', env: 'HALFMQ_FLUSH', kind: 'flush', fallback: 'sync' },
  autoCreateTopics: { flag: '--auto-create-topics', env: 'HALFMQ_AUTO_CREATE_TOPICS', kind: 'boolean', fallback: true },
  defaultQueues: { flag: '--default-queues', env: 'HALFMQ_DEFAULT_QUEUES', kind: 'count', fallback: 4 },
  maxMessageSize: { flag: '--max-message-size', env: 'HALFMQ_MAX_MESSAGE_SIZE', kind: 'bytes', fallback: undefined },
  segmentSize: { flag: '--segment-size', env: 'HALFMQ_SEGMENT_SIZE', kind: 'bytes', fallback: undefined },
  preallocate: { flag: '--preallocate', env: 'HALFMQ_PREALLOCATE', kind: 'bytesOrZero', fallback: undefined },
  retryDelays: { flag: '--retry-delays', env: 'HALFMQ_RETRY_DELAYS', kind: 'string', fallback: undefined },
  txTimeoutMs: { flag: '--tx-timeout-ms', env: 'HALFMQ_TX_TIMEOUT_MS', kind: 'count', fallback: undefined },
  txCheckIntervalMs: { flag: '--tx-check-interval-ms', env: 'HALFMQ_TX_CHECK_INTERVAL_MS', kind: 'count', fallback: undefined },
  txCheckMax: { flag: '--tx-check-max', env: 'HALFMQ_TX_CHECK_MAX', kind: 'count', fallback: undefined },
  heartbeatTimeoutMs: { flag: '--heartbeat-timeout-ms', env: 'HALFMQ_HEARTBEAT_TIMEOUT_MS', kind: 'count', fallback: undefined },
} as const satisfies Record<string, { flag: string; env: string; kind: Kind; fallback: unknown }>;

export type ConfigKey = keyof typeof SETTINGS;
export const CONFIG_KEYS = Object.keys(SETTINGS) as ConfigKey[];

/** The environment variable of each setting, for help texts. */
export function envVarOf(key: ConfigKey): string {
  return SETTINGS[key].env;
}

export interface ResolveInput {
  flags?: BrokerFlags;
  env?: Record<string, string | undefined>;
  /** the parsed config file, if any */
  file?: Record<string, unknown>;
  /** its path, for error messages */
  fileName?: string;
}

export function resolveBrokerConfig(input: ResolveInput): ResolvedBrokerConfig {
  const flags = input.flags ?? {};
  const env = input.env ?? {};
  const file = input.file ?? {};
  const fileLabel = `config file ${input.fileName ?? ''}`.trim();
  for (const key of Object.keys(file)) {
    if (!(key in SETTINGS)) {
      throw new InvalidArgumentError(`${fileLabel}: unknown setting "${key}" (known: ${CONFIG_KEYS.join(', ')})`);
    }
  }
  const values: Record<string, unknown> = {};
  const sources = {} as Record<ConfigKey, ConfigSource>;
  for (const key of CONFIG_KEYS) {
    const setting = SETTINGS[key];
    const flag = flags[key];
    const envValue = env[setting.env];
    if (flag !== undefined) {
      values[key] = parseValue(setting.kind, flag, setting.flag);
      sources[key] = 'flag';
    } else if (envValue !== undefined && envValue !== '') {
      values[key] = parseValue(setting.kind, envValue, setting.env);
      sources[key] = 'env';
    } else if (file[key] !== undefined) {
      values[key] = parseFileValue(setting.kind, file[key], `${fileLabel}: ${key}`);
      sources[key] = 'file';
    } else {
      values[key] = setting.fallback;
      sources[key] = 'default';
    }
  }
  const config: BrokerConfig = {
    host: values.host as string,
    port: values.port as number,
    dataDir: values.data as string,
    flush: values.flush as 'sync' | 'async',
    autoCreateTopics: values.autoCreateTopics as boolean,
    defaultQueues: values.defaultQueues as number,
  };
  if (values.maxMessageSize !== undefined) config.maxMessageSize = values.maxMessageSize as number;
  if (values.segmentSize !== undefined) config.segmentSize = values.segmentSize as number;
  if (values.preallocate !== undefined) config.preallocateBytes = values.preallocate as number;
  if (values.retryDelays !== undefined) config.retryDelays = values.retryDelays as string;
  for (const key of ['txTimeoutMs', 'txCheckIntervalMs', 'txCheckMax', 'heartbeatTimeoutMs'] as const) {
    if (values[key] !== undefined) config[key] = values[key] as number;
  }
  return { config, sources };
}

/** Reads and parses a JSON config file; every failure is one clear InvalidArgumentError. */
export async function loadConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new InvalidArgumentError(`cannot read config file ${path}: ${code}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`config file ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new InvalidArgumentError(`config file ${path} must contain a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

function parseValue(kind: Kind, raw: string, label: string): unknown {
  const text = raw.trim();
  switch (kind) {
    case 'string':
      if (text === '') throw new InvalidArgumentError(`${label} must not be empty`);
      return text;
    case 'port': {
      const n = /^\d+$/.test(text) ? Number(text) : NaN;
      if (!(n >= 0 && n <= 65535)) throw new InvalidArgumentError(`${label} must be a port number 0..65535, got "${raw}"`);
      return n;
    }
    case 'flush':
      if (text !== 'sync' && text !== 'async') throw new InvalidArgumentError(`${label} must be sync or async, got "${raw}"`);
      return text;
    case 'boolean': {
      const lower = text.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(lower)) return true;
      if (['false', '0', 'no', 'off'].includes(lower)) return false;
      throw new InvalidArgumentError(`${label} must be true or false, got "${raw}"`);
    }
    case 'count': {
      const n = /^\d+$/.test(text) ? Number(text) : NaN;
      if (!(n >= 1)) throw new InvalidArgumentError(`${label} must be a positive integer, got "${raw}"`);
      return n;
    }
    case 'bytes':
      return parseBytes(text, label);
    case 'bytesOrZero':
      return parseBytes(text, label, true);
  }
}

/** File values keep their JSON types; a number in quotes is refused rather than guessed at. */
function parseFileValue(kind: Kind, value: unknown, label: string): unknown {
  const expected = kind === 'boolean' ? 'boolean' : kind === 'string' || kind === 'flush' ? 'string' : 'number';
  if ((kind === 'bytes' || kind === 'bytesOrZero') && typeof value === 'string') return parseBytes(value, label, kind === 'bytesOrZero'); // "64MiB" reads well in a file
  if (typeof value !== expected) throw new InvalidArgumentError(`${label} must be a ${expected}, got ${JSON.stringify(value)}`);
  return parseValue(kind, String(value), label);
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** Bytes with an optional binary unit: `4194304`, `4MiB`, `64m`, `1g`; 0 only when `zeroAllowed`. */
export function parseBytes(raw: string, label: string, zeroAllowed = false): number {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined || Number(match[1]) < (zeroAllowed ? 0 : 1)) {
    const what = zeroAllowed ? 'a size in bytes (0 for none)' : 'a positive size in bytes';
    throw new InvalidArgumentError(`${label} must be ${what} (e.g. 4194304 or 4MiB), got "${raw}"`);
  }
  return Number(match[1]) * unit;
}
