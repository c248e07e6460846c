import { describe, expect, it } from 'vitest';
import { prepareDelivery } from '../../../src/broker/delayed-delivery.js';
import { DEFAULT_RETRY_DELAYS, parseDuration, parseRetryDelays, retryDelay } from '../../../src/broker/retry-policy.js';
import { SystemProperty, userProperties } from '../../../src/common/system-properties.js';
import { InvalidArgumentError } from '../../../src/common/errors.js';
import { RecordType } from '../../../src/storage/index.js';
import { rec } from '../storage/helpers.js';

describe('retry policy', () => {
  it("defaults to RocketMQ's schedule and repeats the last delay", () => {
    const delays = parseRetryDelays(DEFAULT_RETRY_DELAYS);
    expect(delays).toHaveLength(16);
    expect(delays.slice(0, 3)).toEqual([10_000, 30_000, 60_000]);
    expect(retryDelay(delays, 15)).toBe(7_200_000);
    expect(retryDelay(delays, 40)).toBe(7_200_000);
    expect(retryDelay(parseRetryDelays('1s,2s,5s'), 1)).toBe(2_000);
  });

  it('parses durations and refuses nonsense with a clear error', () => {
    expect(['250ms', '10s', '1m', '2h', '1d', '75'].map((d) => parseDuration(d))).toEqual([250, 10_000, 60_000, 7_200_000, 86_400_000, 75]);
    for (const bad of ['', 'soon', '1s,,2s', '0s', '-1s']) expect(() => parseRetryDelays(bad)).toThrow(InvalidArgumentError);
    expect(() => parseRetryDelays([])).toThrow(/one or more/);
  });
});

describe('delayed delivery on send', () => {
  it('holds a future message and carries its time, computed with the broker clock', () => {
    const r = rec();
    prepareDelivery(r, { dm: 5_000 }, 1_000_000);
    expect(r.type).toBe(RecordType.DELAYED);
    expect(r.properties[SystemProperty.DELIVER_AT]).toBe('1005000');
    const at = rec();
    prepareDelivery(at, { da: 2_000_000 }, 1_000_000);
    expect(at.properties[SystemProperty.DELIVER_AT]).toBe('2000000');
    expect(userProperties(at.properties)).toEqual({});
  });

  it('leaves a due message ordinary and refuses bad input', () => {
    const due = rec();
    prepareDelivery(due, { da: 5 }, 1_000_000);
    expect(due.type).toBe(RecordType.NORMAL);
    expect(() => prepareDelivery(rec(), { da: 1, dm: 1 }, 0)).toThrow(/not both/);
    expect(() => prepareDelivery(rec(), { dm: -1 }, 0)).toThrow(/delayMs/);
    expect(() => prepareDelivery(rec(), { dm: 400 * 86_400_000 }, 0)).toThrow(/days ahead/);
    expect(() => prepareDelivery(rec({ properties: { [SystemProperty.ORIGIN_TOPIC]: 'x' } }), {}, 0)).toThrow(/reserved/);
  });
});
