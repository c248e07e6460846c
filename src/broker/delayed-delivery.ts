import { InvalidArgumentError } from '../common/errors.js';
import { RecordType } from '../storage/index.js';
import type { RecordInput } from '../storage/index.js';
import { isSystemProperty, SystemProperty } from '../common/system-properties.js';

/** Far enough for any business schedule; further is more likely a unit mistake (s vs ms). */
export const MAX_DELAY_MS = 365 * 86_400_000;

/**
 * Applies a SEND message's delivery time: `da` (deliver at, ms since epoch) or `dm` (delay in ms)
 * makes the record a held DELAYED one carrying DELIVER_AT, computed with the broker's clock so
 * producer clock skew cannot shift it. A time already past leaves it an ordinary message. Also
 * refuses user properties that would be taken for the broker's own.
 */
export function prepareDelivery(record: RecordInput, wire: Record<string, unknown>, now: number): void {
  for (const key in record.properties) {
    if (isSystemProperty(key)) throw new InvalidArgumentError(`property ${key} is reserved for the broker`);
  }
  const { da, dm } = wire;
  if ((da === undefined || da === null) && (dm === undefined || dm === null)) return;
  if (da !== undefined && da !== null && dm !== undefined && dm !== null) {
    throw new InvalidArgumentError('give a message deliverAt or delayMs, not both');
  }
  const value = da ?? dm;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`${da !== undefined && da !== null ? 'deliverAt' : 'delayMs'} must be a non-negative integer (ms), got ${JSON.stringify(value)}`);
  }
  const deliverAt = da !== undefined && da !== null ? value : now + value;
  if (deliverAt - now > MAX_DELAY_MS) {
    throw new InvalidArgumentError(`delivery time is more than ${MAX_DELAY_MS / 86_400_000} days ahead`, { context: { deliverAt, now } });
  }
  if (deliverAt <= now) return;
  record.type = RecordType.DELAYED;
  // Not a spread plus a key: that takes V8's slow path (see TransactionService.prepare).
  record.properties = Object.assign({}, record.properties, { [SystemProperty.DELIVER_AT]: String(deliverAt) });
}

export function isDelayed(record: RecordInput): boolean {
  return record.type === RecordType.DELAYED;
}
