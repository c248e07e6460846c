/**
 * Capped exponential backoff with jitter. Jitter spreads the retries of many clients that lost the
 * same broker at the same moment, so a restarted broker is not hit by all of them in one instant.
 *
 * delay(n) = min(maxMs, initialMs * factor^n), then scaled down by a random fraction up to `jitter`
 * (jitter 0.5 → somewhere in [delay/2, delay]).
 */
export interface BackoffOptions {
  /** first delay; default 100 ms */
  initialMs?: number;
  /** cap; default 5000 ms */
  maxMs?: number;
  /** growth per attempt; default 2 */
  factor?: number;
  /** fraction of the delay that is randomised, 0..1; default 0.5 */
  jitter?: number;
}

export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initialMs = options.initialMs ?? 100;
  const maxMs = options.maxMs ?? 5_000;
  const factor = options.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
  const base = Math.min(maxMs, initialMs * Math.pow(factor, Math.max(0, attempt)));
  return Math.round(base * (1 - jitter * random()));
}

/** Stateful wrapper: `next()` gives the next delay, `reset()` after a success. */
export class Backoff {
  private attempt = 0;

  constructor(private readonly options: BackoffOptions = {}) {}

  next(): number {
    return backoffDelay(this.attempt++, this.options);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
