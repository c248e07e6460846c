import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelay } from '../../../src/common/backoff.js';

describe('backoff', () => {
  it('grows exponentially up to the cap', () => {
    const noJitter = { initialMs: 100, maxMs: 1000, jitter: 0 };
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, noJitter))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('jitters within [delay*(1-jitter), delay]', () => {
    expect(backoffDelay(2, { initialMs: 100, jitter: 0.5 }, () => 0)).toBe(400);
    expect(backoffDelay(2, { initialMs: 100, jitter: 0.5 }, () => 0.999999)).toBe(200);
  });

  it('resets', () => {
    const b = new Backoff({ initialMs: 10, jitter: 0 });
    expect([b.next(), b.next(), b.next()]).toEqual([10, 20, 40]);
    b.reset();
    expect(b.next()).toBe(10);
  });
});
