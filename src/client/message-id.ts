import { randomBytes } from 'node:crypto';

/**
 * Message ids are made by the producer so a retried send keeps its id (consumers dedupe by it).
 * 32 hex chars = 16 bytes:
 *
 *   0..5    process prefix   random per process: two processes never share a sequence
 *   6..11   time             milliseconds since the epoch (48 bits, good until the year 10889)
 *   12..15  counter          per process, wraps at 2^32
 *
 * Uniqueness within a process comes from the counter (4 billion ids before it repeats, and then
 * with a later time); across processes from the 48-bit random prefix. Ids sort by time within a
 * process, which makes logs easier to read.
 *
 * The prefix and counter are the only module-global state of the client that carries meaning, by
 * design (message-convert.ts keeps a one-entry cache of the last valid topic name).
 */
const PROCESS_PREFIX = randomBytes(6).toString('hex');
let counter = randomBytes(4).readUInt32BE(0);

export const MESSAGE_ID_PATTERN = /^[0-9a-f]{32}$/;

// Everything but the counter's last byte changes at most once per 256 ids or per millisecond, so it
// is formatted then and reused: formatting the whole id each time (toString + padStart) was 4.7% of
// a transaction producer's CPU; now an id is one concatenation (about 0.12 µs instead of 0.3).
const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
let stemTime = -1;
let stemHigh = -1;
let stem = '';

export function createMessageId(now: number = Date.now()): string {
  counter = (counter + 1) >>> 0;
  const time = Math.max(0, Math.floor(now)) % 2 ** 48;
  const high = counter >>> 8;
  if (time !== stemTime || high !== stemHigh) {
    stemTime = time;
    stemHigh = high;
    stem = PROCESS_PREFIX + time.toString(16).padStart(12, '0') + HEX_BYTE[high >>> 16]! + HEX_BYTE[(high >>> 8) & 255]! + HEX_BYTE[high & 255]!;
  }
  return stem + HEX_BYTE[counter & 255]!;
}

export function isMessageId(value: unknown): value is string {
  return typeof value === 'string' && MESSAGE_ID_PATTERN.test(value);
}
