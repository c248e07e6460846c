import { CorruptDataError, InvalidArgumentError, MalformedFrameError, MessageTooLargeError } from '../common/errors.js';
import { u32 } from '../common/le.js';
import { normalizeKeys } from '../common/message.js';
import { validateName } from '../common/names.js';
import type { DeadLetterMessage, Message, ReceivedMessage, SendResult } from '../common/message.js';
import { RecordType, type RecordInput, type StoredRecord } from '../common/record.js';
import { decodeRecord, MIN_RECORD_SIZE } from '../common/record-codec.js';
import { TX_GROUP_PROPERTY, TX_ID_PROPERTY, originOf, userProperties } from '../common/system-properties.js';
import type { RawPullResponse, WireDeliveredMessage, WireOutgoingMessage } from '../protocol/commands.js';
import type { WireDeadLetter } from '../protocol/reliability-commands.js';

/**
 * Conversions between the SDK's message shapes and the wire's short-keyed ones, plus the checks a
 * message must pass before it is sent. Checking here means a bad message fails fast with a clear
 * error instead of a round trip (and, for oversize bodies, instead of a wasted upload).
 */

/** A message ready for the wire: its header entry and its encoded body. */
export interface EncodedMessage {
  wire: WireOutgoingMessage;
  body: Buffer;
}

// A producer sends to few topics: the name's regex ran for every message (3.8% of a producer's
// CPU at 80,000 sends/s), now once per change of topic.
let lastValidTopic: string | undefined;

/**
 * Checks the shape of a message (everything but the size limit, which needs the broker's
 * HELLO answer). Throws InvalidArgumentError naming the offending field.
 */
export function validateMessage(message: unknown, label = 'message'): asserts message is Message {
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    throw new InvalidArgumentError(`${label} must be an object with topic and body`);
  }
  const m = message as Record<string, unknown>;
  if (typeof m.topic !== 'string' || m.topic.trim() === '') {
    throw new InvalidArgumentError(`${label}.topic must be a non-empty string`);
  }
  if (m.topic !== lastValidTopic) lastValidTopic = validateName('topic', m.topic);
  if (typeof m.body !== 'string' && !(m.body instanceof Uint8Array)) {
    throw new InvalidArgumentError(`${label}.body must be a string or a Uint8Array`);
  }
  if (m.tag !== undefined && typeof m.tag !== 'string') throw new InvalidArgumentError(`${label}.tag must be a string`);
  if (typeof m.tag === 'string' && m.tag.includes('||')) {
    // `||` separates tags in subscription expressions; such a tag could never be subscribed to.
    throw new InvalidArgumentError(`${label}.tag must not contain "||"`);
  }
  if (m.keys !== undefined) {
    const ok = typeof m.keys === 'string' || (Array.isArray(m.keys) && m.keys.every((k) => typeof k === 'string'));
    if (!ok) throw new InvalidArgumentError(`${label}.keys must be a string or an array of strings`);
  }
  if (m.properties !== undefined) {
    if (m.properties === null || typeof m.properties !== 'object' || Array.isArray(m.properties)) {
      throw new InvalidArgumentError(`${label}.properties must be an object of string values`);
    }
    for (const [k, v] of Object.entries(m.properties)) {
      if (typeof v !== 'string') throw new InvalidArgumentError(`${label}.properties.${k} must be a string`);
    }
  }
  if (m.shardingKey !== undefined && typeof m.shardingKey !== 'string') {
    throw new InvalidArgumentError(`${label}.shardingKey must be a string`);
  }
  for (const field of ['deliverAt', 'delayMs'] as const) {
    const v = m[field];
    if (v !== undefined && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) {
      throw new InvalidArgumentError(`${label}.${field} must be a non-negative integer (ms)`);
    }
  }
  if (m.deliverAt !== undefined && m.delayMs !== undefined) throw new InvalidArgumentError(`${label}: give deliverAt or delayMs, not both`);
}

export function encodeBody(body: string | Uint8Array): Buffer {
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/**
 * Encodes one message, which must have passed validateMessage (every caller checks first, with the
 * label its error should name). `maxMessageSize` is the broker's limit from HELLO; an oversize
 * body throws MessageTooLargeError without anything being sent.
 */
export function encodeMessage(message: Message, msgId: string, maxMessageSize: number, now: number = Date.now()): EncodedMessage {
  const body = encodeBody(message.body);
  if (body.length > maxMessageSize) {
    throw new MessageTooLargeError(`message body of ${body.length} bytes exceeds the limit of ${maxMessageSize} bytes`, {
      context: { topic: message.topic, size: body.length, maxMessageSize },
    });
  }
  const wire: WireOutgoingMessage = { t: message.topic, id: msgId, n: body.length, b: now };
  if (message.tag !== undefined && message.tag !== '') wire.g = message.tag;
  const keys = normalizeKeys(message.keys);
  if (keys.length > 0) wire.k = keys;
  if (message.properties && Object.keys(message.properties).length > 0) wire.p = { ...message.properties };
  if (message.shardingKey !== undefined && message.shardingKey !== '') wire.s = message.shardingKey;
  // Sent as given: the broker turns a delay into a time with its own clock.
  if (message.deliverAt !== undefined) wire.da = message.deliverAt;
  if (message.delayMs !== undefined) wire.dm = message.delayMs;
  return { wire, body };
}

/**
 * Whether a message can go as a record (SEND `records`): what only a `messages` entry carries (a
 * sharding key, a delivery time) is absent.
 */
export function isPlainMessage(e: EncodedMessage): boolean {
  const w = e.wire;
  return w.s === undefined && w.da === undefined && w.dm === undefined;
}

const MAX_TAG_BYTES = 0xffff;
// A string of at most this many UTF-16 units has at most MAX_TAG_BYTES bytes of UTF-8.
const MAX_TAG_CHARS = Math.floor(MAX_TAG_BYTES / 3);
const NO_KEYS: string[] = [];
const NO_PROPERTIES: Record<string, string> = {};

/**
 * The record a plain message becomes. Of what the format limits, validateMessage and
 * createMessageId already ensure all but the tag's length, so only that is checked here (the full
 * check's regex on the id was 4% of a producer's CPU); the broker checks every field again.
 */
export function recordInputOf(e: EncodedMessage): RecordInput {
  const w = e.wire;
  if (w.g !== undefined && w.g.length > MAX_TAG_CHARS && Buffer.byteLength(w.g) > MAX_TAG_BYTES) {
    throw new InvalidArgumentError(`message tag is longer than ${MAX_TAG_BYTES} bytes`, { context: { topic: w.t } });
  }
  return { type: RecordType.NORMAL, topic: w.t, queueId: 0, msgId: w.id, tag: w.g, keys: w.k ?? NO_KEYS, properties: w.p ?? NO_PROPERTIES, body: e.body, bornTimestamp: w.b, reconsumeTimes: 0 };
}

/** The record a plain half message of transaction `transactionId` becomes (RECORD_HALF): marked as the broker's log replay reads it. */
export function halfRecordInputOf(e: EncodedMessage, transactionId: string, group: string): RecordInput {
  const r = recordInputOf(e);
  r.type = RecordType.PREPARED;
  // Object.assign, not a spread: `{ ...props, more }` takes V8's slow path.
  r.properties = Object.assign({}, e.wire.p, { [TX_ID_PROPERTY]: transactionId, [TX_GROUP_PROPERTY]: group });
  return r;
}

export function toSendResult(result: { msgId: string; topic: string; queueId: number; queueOffset: number }): SendResult {
  return { msgId: result.msgId, topic: result.topic, queueId: result.queueId, queueOffset: result.queueOffset };
}

export function toReceivedMessage(wire: WireDeliveredMessage, body: Buffer): ReceivedMessage {
  const message: ReceivedMessage = {
    msgId: wire.id,
    topic: wire.t,
    queueId: wire.q,
    queueOffset: wire.o,
    keys: wire.k ?? [],
    properties: wire.p ?? {},
    body,
    bornTimestamp: wire.b,
    storeTimestamp: wire.st,
    reconsumeTimes: wire.r ?? 0,
  };
  if (wire.g !== undefined && wire.g !== '') message.tag = wire.g;
  if (Array.isArray(wire.h)) message.ackRef = [wire.h[0], wire.h[1], wire.h[2]];
  return message;
}

/**
 * The messages of a PULL answered with records as stored (RawPullResponse): each record's crc is
 * checked here, since the broker passed its bytes on unread, and each is shown as the broker shows
 * a decoded one (broker/delivery-view.ts): a retry copy as the message first sent, with `ackRef`
 * where it lives, and without the broker's own properties. Bodies are views into `body`.
 */
export function receivedFromRecords(reply: RawPullResponse, body: Buffer): ReceivedMessage[] {
  const { o: offsets, r: reconsumeTimes } = reply;
  if (!Array.isArray(offsets) || !Array.isArray(reconsumeTimes) || offsets.length !== reconsumeTimes.length) {
    throw new MalformedFrameError('PULL response lacks matching offset and reconsume-times lists');
  }
  const out: ReceivedMessage[] = new Array(offsets.length);
  let pos = 0;
  for (let i = 0; i < offsets.length; i++) {
    const size = body.length - pos >= 4 ? u32(body, pos) : 0;
    if (size < MIN_RECORD_SIZE || size > body.length - pos) {
      throw new MalformedFrameError(`record ${i} of a PULL response claims ${size} bytes but the frame has ${body.length - pos} left`);
    }
    let record: StoredRecord;
    try {
      record = decodeRecord(body, -1, pos);
    } catch (cause) {
      throw new CorruptDataError(`record ${i} of a PULL response (queue offset ${offsets[i]}) is corrupt: ${(cause as Error).message}`, {
        context: { queueOffset: offsets[i] },
        cause,
      });
    }
    record.queueOffset = offsets[i]!;
    out[i] = fromRecord(record, reconsumeTimes[i]!);
    pos += size;
  }
  if (pos !== body.length) throw new MalformedFrameError(`PULL response has ${body.length - pos} bytes after its last record`);
  return out;
}

function fromRecord(r: StoredRecord, reconsumeTimes: number): ReceivedMessage {
  const message: ReceivedMessage = {
    msgId: r.msgId,
    topic: r.topic,
    queueId: r.queueId,
    queueOffset: r.queueOffset,
    keys: r.keys,
    properties: userProperties(r.properties),
    body: r.body,
    bornTimestamp: r.bornTimestamp,
    storeTimestamp: r.storeTimestamp,
    reconsumeTimes,
  };
  if (r.tag !== undefined) message.tag = r.tag;
  const origin = originOf(r.properties);
  if (origin !== undefined) {
    message.ackRef = [r.topic, r.queueId, r.queueOffset];
    message.topic = origin.topic;
    message.queueId = origin.queueId;
    message.queueOffset = origin.queueOffset;
  }
  return message;
}

export function toDeadLetterMessage(w: WireDeadLetter, body: Buffer): DeadLetterMessage {
  const m: DeadLetterMessage = {
    msgId: w.id,
    topic: w.t,
    queueId: w.q,
    queueOffset: w.o,
    dlqOffset: w.dlqOffset,
    keys: w.k ?? [],
    properties: w.p ?? {},
    reason: w.reason,
    reconsumeTimes: w.r,
    bornTimestamp: w.b,
    deadAt: w.deadAt,
    body,
  };
  if (w.g !== undefined) m.tag = w.g;
  return m;
}

/** The [topic, queueId, queueOffset] triple ACK and NACK identify a delivery by. */
export function messageRef(message: Pick<ReceivedMessage, 'topic' | 'queueId' | 'queueOffset' | 'ackRef'>): [string, number, number] {
  return message.ackRef ? [...message.ackRef] : [message.topic, message.queueId, message.queueOffset];
}
