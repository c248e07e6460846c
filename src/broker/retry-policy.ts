import { InvalidArgumentError } from '../common/errors.js';

/**
 * When a failed message comes back. RocketMQ's schedule by default (its delay levels 3-18), the last
 * delay repeating for retries past the end of the list. Configurable on the broker with
 * `--retry-delays 1s,2s,5s`; how many retries a group gets is the group's `maxReconsumeTimes`.
 */
export const DEFAULT_RETRY_DELAYS = '10s,30s,1m,2m,3m,4m,5m,6m,7m,8m,9m,10m,20m,30m,1h,2h';
export const DEFAULT_MAX_RECONSUME_TIMES = 16;
/** RocketMQ's cap; more would keep a poison message cycling for days. */
export const MAX_RECONSUME_TIMES = 64;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `250ms`, `10s`, `1m`, `2h`, `1d`, or a bare number of milliseconds. */
export function parseDuration(text: string, label = 'duration'): number {
  const match = /^(\d+)\s*(ms|s|m|h|d)?$/i.exec(text.trim());
  const ms = match ? Number(match[1]) * UNIT_MS[(match[2] ?? 'ms').toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError(`${label} must be a duration like 500ms, 10s, 1m or 2h, got "${text}"`);
  return ms;
}

/** A comma-separated schedule (`1s,2s,5s`) or a list of milliseconds; at least one positive delay. */
export function parseRetryDelays(value: string | readonly number[]): number[] {
  const delays = typeof value === 'string' ? value.split(',').map((d) => parseDuration(d, 'each retry delay')) : [...value];
  if (delays.length === 0 || !delays.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw new InvalidArgumentError(`retry delays must be one or more positive durations, e.g. 1s,2s,5s; got "${String(value)}"`);
  }
  return delays;
}

/** Delay before the delivery after one that was the `reconsumeTimes`-th retry (0 = first delivery). */
export function retryDelay(delays: readonly number[], reconsumeTimes: number): number {
  return delays[Math.min(Math.max(0, reconsumeTimes), delays.length - 1)]!;
}
