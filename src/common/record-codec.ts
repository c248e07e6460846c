import { crc32 } from 'node:zlib';
import { pack, unpack } from 'msgpackr';
import { CorruptDataError, InvalidArgumentError } from './errors.js';
import { putU16, putU32, putU64, u16, u32, u64 } from './le.js';
import type { RecordInput, StoredRecord } from './record.js';

/**
 * Commit-log record, version 1. All integers little-endian.
 *
 * off  size  field
 * 0    4     totalSize (u32, whole record including this field)
 * 4    4     magic 0x484D5131 ("HMQ1")
 * 8    4     crc32 (zlib) over bytes [12, totalSize)
 * 12   1     version = 1
 * 13   1     type: 0 NORMAL, 1 PREPARED, 2 TX_OP (others: stored, never dispatched)
 * 14   2     reserved 0
 * 16   4     queueId (u32)
 * 20   8     queueOffset (u64 as lo u32, hi u32; all ones = -1 = "not in a queue")
 * 28   8     bornTimestamp ms (u64, same encoding)
 * 36   8     storeTimestamp ms (u64, same encoding)
 * 44   4     reconsumeTimes (u32)
 * 48   2     topic byte length, then topic UTF-8
 * ..   1     msgId byte length, then msgId ASCII
 * ..   2     tag byte length (0 = no tag), then tag UTF-8
 * ..   4     meta length (0 when no keys and no properties), then msgpackr { k?: string[], p?: Record<string,string> }
 * ..   4     body length, then body
 *
 * Records never span commit-log segments. A record is valid when its size is sane, the magic
 * matches and the crc matches; anything else at the tail of the log is a torn write.
 */
export const RECORD_MAGIC = 0x484d5131;
export const RECORD_VERSION = 1;
export const FIXED_HEADER_SIZE = 48;
/** The smallest possible record: fixed header plus the five length fields, all strings empty. */
export const MIN_RECORD_SIZE = FIXED_HEADER_SIZE + 2 + 1 + 2 + 4 + 4;
/** Offset of the storeTimestamp field, read alone by offsetForTimestamp. */
export const STORE_TIMESTAMP_AT = 36;
const RECONSUME_TIMES_AT = 44;

const CRC_START = 12;
const MAX_U32 = 0xffff_ffff;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** Rejects inputs the format cannot hold (lengths that overflow their fields, non-ASCII ids). */
export function validateRecordInput(input: RecordInput): void {
  const fail = (why: string): never => {
    throw new InvalidArgumentError(`record not storable: ${why}`, { context: { topic: input.topic, msgId: input.msgId } });
  };
  if (!Number.isInteger(input.type) || input.type < 0 || input.type > 255) fail('type must be 0..255');
  if (!Number.isInteger(input.queueId) || input.queueId < 0 || input.queueId > MAX_U32) fail('queueId must be a u32');
  if (input.topic.length === 0 || Buffer.byteLength(input.topic) > 0xffff) fail('topic length');
  if (input.msgId.length > 255 || !PRINTABLE_ASCII.test(input.msgId)) fail('msgId must be printable ASCII, at most 255 chars');
  if (input.tag !== undefined && Buffer.byteLength(input.tag) > 0xffff) fail('tag length');
  if (!Number.isInteger(input.reconsumeTimes) || input.reconsumeTimes < 0 || input.reconsumeTimes > MAX_U32) fail('reconsumeTimes must be a u32');
  if (!Number.isSafeInteger(input.bornTimestamp) || input.bornTimestamp < 0) fail('bornTimestamp must be a non-negative integer');
}

function encodeMeta(input: RecordInput): Buffer | undefined {
  const hasKeys = input.keys.length > 0;
  let hasProps = false;
  for (const _ in input.properties) {
    hasProps = true;
    break;
  }
  if (!hasKeys && !hasProps) return undefined;
  const meta: { k?: string[]; p?: Record<string, string> } = {};
  if (hasKeys) meta.k = input.keys;
  if (hasProps) meta.p = input.properties;
  return pack(meta);
}

/** What a record's variable part needs, measured once so the record is allocated once. */
interface Layout {
  total: number;
  topicLen: number;
  tagLen: number;
  meta: Buffer | undefined;
}

function layoutOf(input: RecordInput): Layout {
  const topicLen = Buffer.byteLength(input.topic);
  const tagLen = input.tag === undefined ? 0 : Buffer.byteLength(input.tag);
  const meta = encodeMeta(input);
  const total = MIN_RECORD_SIZE + topicLen + input.msgId.length + tagLen + (meta === undefined ? 0 : meta.length) + input.body.byteLength;
  return { total, topicLen, tagLen, meta };
}

/** Writes the record at `buf[at]` and returns where it ends. `crc: false` leaves the crc field 0. */
function writeRecord(buf: Buffer, at: number, input: RecordInput, layout: Layout, queueOffset: number, storeTimestamp: number, crc: boolean): number {
  const { total, topicLen, tagLen, meta } = layout;
  const msgIdLen = input.msgId.length;
  const bodyLen = input.body.byteLength;
  putU32(buf, at, total);
  putU32(buf, at + 4, RECORD_MAGIC);
  putU32(buf, at + 8, 0);
  buf[at + 12] = RECORD_VERSION;
  buf[at + 13] = input.type;
  putU16(buf, at + 14, 0);
  putU32(buf, at + 16, input.queueId);
  putU64(buf, at + 20, queueOffset);
  putU64(buf, at + 28, input.bornTimestamp);
  putU64(buf, at + 36, storeTimestamp);
  putU32(buf, at + RECONSUME_TIMES_AT, input.reconsumeTimes);
  let pos = at + FIXED_HEADER_SIZE;
  putU16(buf, pos, topicLen);
  pos += 2;
  pos += buf.write(input.topic, pos, topicLen, 'utf8');
  buf[pos++] = msgIdLen;
  pos += buf.write(input.msgId, pos, msgIdLen, 'latin1');
  putU16(buf, pos, tagLen);
  pos += 2;
  if (tagLen > 0) pos += buf.write(input.tag as string, pos, tagLen, 'utf8');
  putU32(buf, pos, meta === undefined ? 0 : meta.length);
  pos += 4;
  if (meta !== undefined) pos += meta.copy(buf, pos);
  putU32(buf, pos, bodyLen);
  pos += 4;
  buf.set(input.body, pos);
  if (crc) putU32(buf, at + 8, crc32(buf.subarray(at + CRC_START, at + total)));
  return at + total;
}

/**
 * Encodes one record. The input must have passed validateRecordInput. Sizes are computed first so
 * the record is allocated once; the crc is computed last over the finished bytes.
 */
export function encodeRecord(input: RecordInput, queueOffset: number, storeTimestamp: number): Buffer {
  const layout = layoutOf(input);
  const buf = Buffer.allocUnsafe(layout.total);
  writeRecord(buf, 0, input, layout, queueOffset, storeTimestamp, true);
  return buf;
}

/**
 * Encodes records back to back into one buffer, as a producer sends them (SEND `records`): no
 * queue offset, store time or crc, which the broker stamps (see stampRecord). Every input must have
 * passed validateRecordInput.
 */
export function encodeUnstampedRecords(inputs: readonly RecordInput[]): Buffer {
  const layouts = inputs.map(layoutOf);
  let total = 0;
  for (const l of layouts) total += l.total;
  const buf = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < inputs.length; i++) at = writeRecord(buf, at, inputs[i]!, layouts[i]!, -1, 0, false);
  return buf;
}

/**
 * Completes a whole record, in place, with what only the store knows, and (re)computes its crc:
 * the fixed header is rewritten entirely, so whatever a sender put there does not matter. The
 * variable part must already have been checked (decodeRecord without crc does that).
 */
export function stampRecord(record: Buffer, type: number, queueId: number, queueOffset: number, storeTimestamp: number): void {
  putU32(record, 4, RECORD_MAGIC);
  record[12] = RECORD_VERSION;
  record[13] = type;
  putU16(record, 14, 0);
  putU32(record, 16, queueId);
  putU64(record, 20, queueOffset);
  putU64(record, 36, storeTimestamp);
  putU32(record, RECONSUME_TIMES_AT, 0);
  putU32(record, 8, crc32(record.subarray(CRC_START)));
}

/**
 * Checks the record at `at` whose totalSize (already read and bounds-checked by the caller) is
 * `size`. Returns why it is invalid, or undefined when magic, version and crc are all good.
 */
export function validateRecord(buf: Buffer, at: number, size: number): string | undefined {
  if (size < MIN_RECORD_SIZE) return `size ${size} below minimum`;
  if (at + size > buf.length) return `size ${size} past the available bytes`;
  if (u32(buf, at + 4) !== RECORD_MAGIC) return 'bad magic';
  if (buf[at + 12] !== RECORD_VERSION) return `unknown version ${buf[at + 12]}`;
  if (crc32(buf.subarray(at + CRC_START, at + size)) !== u32(buf, at + 8)) return 'crc mismatch';
  return undefined;
}

/** The fields the dispatcher needs, read without decoding meta or copying the body. */
export interface DispatchInfo {
  type: number;
  topic: string;
  queueId: number;
  queueOffset: number;
  tag: string | undefined;
  storeTimestamp: number;
}

/** Reads dispatch fields from a record already checked by validateRecord. */
export function decodeDispatchInfo(buf: Buffer, at: number): DispatchInfo {
  const topicAt = at + FIXED_HEADER_SIZE + 2;
  return {
    type: buf[at + 13],
    topic: buf.toString('utf8', topicAt, topicAt + u16(buf, topicAt - 2)),
    queueId: u32(buf, at + 16),
    queueOffset: u64(buf, at + 20),
    tag: recordTag(buf, at),
    storeTimestamp: u64(buf, at + 36),
  };
}

/**
 * The reconsumeTimes field of a whole record, read without decoding it (or checking it: a broker
 * serving a PULL passes the bytes on, the consumer checks them).
 */
export function recordReconsumeTimes(record: Buffer): number {
  return u32(record, RECONSUME_TIMES_AT);
}

/** The tag of the record at `at` (undefined when it has none), read like recordReconsumeTimes. */
export function recordTag(buf: Buffer, at = 0): string | undefined {
  let pos = at + FIXED_HEADER_SIZE;
  pos += 2 + u16(buf, pos);
  pos += 1 + buf[pos]!;
  const tagLen = u16(buf, pos);
  return tagLen === 0 ? undefined : buf.toString('utf8', pos + 2, pos + 2 + tagLen);
}

function corrupt(why: string, physicalOffset: number): CorruptDataError {
  return new CorruptDataError(`commit-log record at ${physicalOffset}: ${why}`, { context: { physicalOffset } });
}

/**
 * Decodes and verifies the record starting at `buf[at]` (default 0). The body is a view into `buf`
 * unless `copyBody` is set (use it when `buf` is a large shared read buffer, so a kept message does
 * not pin the whole buffer). `checkCrc: false` skips only the checksum, for bytes that never left
 * this process's memory (they were encoded here). Throws CorruptDataError on any inconsistency.
 */
export function decodeRecord(buf: Buffer, physicalOffset: number, at = 0, copyBody = false, checkCrc = true): StoredRecord {
  if (buf.length - at < MIN_RECORD_SIZE) throw corrupt('truncated header', physicalOffset);
  const size = u32(buf, at);
  const invalid = checkCrc ? validateRecord(buf, at, size) : size < MIN_RECORD_SIZE || at + size > buf.length ? `bad size ${size}` : undefined;
  if (invalid !== undefined) throw corrupt(invalid, physicalOffset);
  const end = at + size;
  let pos = at + FIXED_HEADER_SIZE;
  const field = (len: number): number => {
    const start = pos;
    pos += len;
    if (pos > end) throw corrupt('field length past the record end', physicalOffset);
    return start;
  };
  const topicLen = u16(buf, field(2));
  const topicAt = field(topicLen);
  const msgIdLen = buf[field(1)];
  const msgIdAt = field(msgIdLen);
  const tagLen = u16(buf, field(2));
  const tagAt = field(tagLen);
  const metaLen = u32(buf, field(4));
  const metaAt = field(metaLen);
  const bodyLen = u32(buf, field(4));
  const bodyAt = field(bodyLen);
  if (pos !== end) throw corrupt('trailing bytes after the body', physicalOffset);

  let keys: string[] = [];
  let properties: Record<string, string> = {};
  if (metaLen > 0) {
    let meta: unknown;
    try {
      meta = unpack(buf.subarray(metaAt, metaAt + metaLen));
    } catch (cause) {
      throw new CorruptDataError(`commit-log record at ${physicalOffset}: bad meta`, { context: { physicalOffset }, cause });
    }
    if (typeof meta !== 'object' || meta === null) throw corrupt('meta is not a map', physicalOffset);
    const { k, p } = meta as { k?: unknown; p?: unknown };
    if (Array.isArray(k)) keys = k as string[];
    if (typeof p === 'object' && p !== null) properties = p as Record<string, string>;
  }
  const bodyView = buf.subarray(bodyAt, bodyAt + bodyLen);
  const record: StoredRecord = {
    physicalOffset,
    size,
    type: buf[at + 13],
    topic: buf.toString('utf8', topicAt, topicAt + topicLen),
    queueId: u32(buf, at + 16),
    queueOffset: u64(buf, at + 20),
    msgId: buf.toString('latin1', msgIdAt, msgIdAt + msgIdLen),
    keys,
    properties,
    body: copyBody ? Buffer.from(bodyView) : bodyView,
    bornTimestamp: u64(buf, at + 28),
    storeTimestamp: u64(buf, at + 36),
    reconsumeTimes: u32(buf, at + RECONSUME_TIMES_AT),
  };
  if (tagLen > 0) record.tag = buf.toString('utf8', tagAt, tagAt + tagLen);
  return record;
}
