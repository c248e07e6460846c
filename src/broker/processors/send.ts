import { InvalidArgumentError, MessageTooLargeError } from '../../common/errors.js';
import type { SendResponse, WireOutgoingMessage } from '../../protocol/commands.js';
import { splitBodies } from '../../protocol/message-codec.js';
import { decodeRecord, MIN_RECORD_SIZE } from '../../common/record-codec.js';
import { RecordType } from '../../storage/index.js';
import type { AppendResult, RecordInput, StoredRecord, TopicConfig } from '../../storage/index.js';
import type { BrokerContext, Processor } from '../context.js';
import { isDelayed, prepareDelivery } from '../delayed-delivery.js';
import { asObject, optString, optStringArray, optStringRecord, reqString } from '../validate.js';

const MSG_ID = /^[\x21-\x7e]{1,64}$/;
const MAX_BATCH = 10_000;

/**
 * SEND {messages} + bodies → {results}. All messages of one request are appended together: one
 * write, one fsync wait, and the reply only after they are durable per flush mode.
 */
export const send: Processor = async (ctx, _session, { payload, body }) => {
  const d = asObject(payload, 'SEND payload');
  let records: RecordInput[];
  let appending: Promise<AppendResult[]>;
  if (d.records !== undefined) {
    records = await recordsFromRecordBody(ctx, d.records, body);
    appending = ctx.store.append(records);
  } else {
    records = await recordsFromWire(ctx, d.messages, body, RecordType.NORMAL);
    // Delayed messages go through the timer service, which indexes them once stored.
    appending = records.some(isDelayed) ? ctx.timers.append(records) : ctx.store.append(records);
  }
  ctx.lookup.indexWhenStored(records, appending);
  const results = await appending;
  // Compact: two number arrays instead of a map per message, which was 9% of the broker's time
  // on the produce path (msgpack of the ids and topics the sender already knows).
  const reply: SendResponse =
    d.cr === true
      ? { q: records.map((r) => r.queueId), o: results.map((r) => r.queueOffset) }
      : { results: results.map((r, i) => ({ msgId: records[i]!.msgId, topic: records[i]!.topic, queueId: records[i]!.queueId, queueOffset: r.queueOffset })) };
  return { payload: reply };
};

/**
 * SEND `records` (RECORD_SEND): the frame body is `count` unstamped commit-log records. Each is
 * checked as a `messages` entry would be (framing, topic, id, size, keys, properties) and read into
 * a RecordInput of `type` whose body is a view of the request and whose `encoded` is the record's
 * own bytes, which the store stamps in place (with that type) and writes. One bad record fails the
 * request.
 */
export function recordsFromRecordBody(ctx: BrokerContext, count: unknown, body: Buffer, type: number = RecordType.NORMAL): RecordInput[] | Promise<RecordInput[]> {
  checkRecordCount(count);
  const records: RecordInput[] = new Array(count);
  const placing: Promise<void>[] = [];
  const now = Date.now();
  let at = 0;
  try {
    for (let i = 0; i < count; i++) {
      const r = readSentRecord(body, at, i, count);
      records[i] = recordInputOfSent(ctx, r, body.subarray(at, at + r.size), type, now, placing);
      at += r.size;
    }
    checkRecordsEnd(body, at, count);
  } catch (err) {
    abandon(placing);
    throw err;
  }
  return whenPlaced(records, placing);
}

/** A `records` count: 1 to MAX_BATCH. */
export function checkRecordCount(count: unknown): asserts count is number {
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > MAX_BATCH) {
    throw new InvalidArgumentError(`records must be an integer from 1 to ${MAX_BATCH}`);
  }
}

/** After the last of `count` records: nothing may follow them. */
export function checkRecordsEnd(body: Buffer, at: number, count: number): void {
  if (at !== body.length) throw new InvalidArgumentError(`SEND records: ${body.length - at} bytes after the ${count} records`);
}

/**
 * The framing of sent record `i` at `at` (no crc to check: the sender leaves it to the broker, see
 * stampRecord). A record that fails here leaves the rest of the body unreadable.
 */
export function readSentRecord(body: Buffer, at: number, i: number, count: number): StoredRecord {
  if (body.length - at < MIN_RECORD_SIZE) throw new InvalidArgumentError(`SEND records: record ${i} of ${count} is missing or truncated at byte ${at}`);
  try {
    return decodeRecord(body, -1, at, false, false);
  } catch (err) {
    throw new InvalidArgumentError(`SEND records: record ${i} is malformed: ${(err as Error).message}`, { context: { index: i, at } });
  }
}

/**
 * A sent record (framing already read) as a RecordInput of `type` whose `encoded` is `encoded`:
 * its fields checked as a `messages` entry's, its topic placed (a promise joins `placing` when the
 * topic is being created). A failure concerns this record alone.
 */
export function recordInputOfSent(ctx: BrokerContext, r: StoredRecord, encoded: Buffer, type: number, now: number, placing: Promise<void>[]): RecordInput {
  const record: RecordInput = {
    type,
    topic: r.topic,
    queueId: 0,
    msgId: r.msgId,
    tag: r.tag === '' ? undefined : r.tag,
    keys: optStringArray(r.keys, 'keys'),
    properties: optStringRecord(r.properties, 'properties'),
    body: r.body,
    bornTimestamp: r.bornTimestamp,
    reconsumeTimes: 0,
    encoded,
  };
  const placed = placeRecord(ctx, record, undefined);
  if (placed !== undefined) placing.push(placed);
  prepareDelivery(record, NO_DELIVERY_TIME, now); // refuses the broker's own property names
  return record;
}

const NO_DELIVERY_TIME: Record<string, unknown> = {};

/**
 * Validates the messages of a SEND or SEND_HALF request and turns them into records of `type`:
 * topic (auto-created when allowed), queue (by sharding key, else round robin), size limits. A
 * promise only when a topic has to be created: a batch of transactions checks its entries without
 * a promise each.
 */
export function recordsFromWire(ctx: BrokerContext, wireMessages: unknown, body: Buffer, type: number): RecordInput[] | Promise<RecordInput[]> {
  const messages = wireMessages as WireOutgoingMessage[];
  if (!Array.isArray(messages) || messages.length === 0 || messages.length > MAX_BATCH) {
    throw new InvalidArgumentError(`messages must be an array of 1 to ${MAX_BATCH} entries`);
  }
  for (let i = 0; i < messages.length; i++) asObject(messages[i], 'messages', i);
  const bodies = splitBodies(body, messages);
  const records: RecordInput[] = new Array(messages.length);
  const placing: Promise<void>[] = [];
  try {
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as unknown as Record<string, unknown>;
      const tag = optString(m, 'g', 'tag');
      const record: RecordInput = {
        type,
        topic: reqString(m, 't', 'message topic'),
        queueId: 0,
        msgId: reqString(m, 'id', 'message id'),
        tag: tag === '' ? undefined : tag,
        keys: optStringArray(m.k, 'keys'),
        properties: optStringRecord(m.p, 'properties'),
        body: bodies[i]!,
        bornTimestamp: typeof m.b === 'number' ? m.b : Date.now(),
        reconsumeTimes: 0,
      };
      const placed = placeRecord(ctx, record, optString(m, 's', 'sharding key'));
      if (placed !== undefined) placing.push(placed);
      if (type === RecordType.NORMAL) prepareDelivery(record, m, Date.now());
      records[i] = record;
    }
  } catch (err) {
    abandon(placing);
    throw err;
  }
  return whenPlaced(records, placing);
}

/**
 * The records once every topic they wait for exists: at once when none is being created (topics
 * being created are created once however many messages wait for them: TopicManager).
 */
function whenPlaced(records: RecordInput[], placing: Promise<void>[]): RecordInput[] | Promise<RecordInput[]> {
  return placing.length === 0 ? records : Promise.all(placing).then(() => records);
}

/**
 * A request that fails on a later message no longer waits for the topics its earlier ones asked
 * for; their outcome must still be handled, or a refused topic would be an unhandled rejection
 * and take the broker down.
 */
export function abandon(placing: Promise<void>[]): void {
  for (const p of placing) p.catch(() => undefined);
}

/**
 * What every sent message goes through, as an entry or as a record: its id and size checked, its
 * topic resolved (auto-created when allowed) and its queue chosen (by sharding key, else round
 * robin). Sets the record's topic (the table's own name string) and queue.
 */
function placeRecord(ctx: BrokerContext, record: RecordInput, shardingKey: string | undefined): Promise<void> | undefined {
  if (!MSG_ID.test(record.msgId)) throw new InvalidArgumentError(`message id must be 1-64 printable ASCII characters`);
  const size = record.body.length;
  if (size > ctx.options.maxMessageSize) {
    throw new MessageTooLargeError(`message body of ${size} bytes exceeds the limit of ${ctx.options.maxMessageSize}`, {
      context: { topic: record.topic, msgId: record.msgId, size, limit: ctx.options.maxMessageSize },
    });
  }
  const known = ctx.topics.get(record.topic);
  // Synchronous for a known topic (every send but a topic's first): an async call and an await
  // per message were measurable on the send and transaction paths.
  if (known === undefined) return ctx.topics.forSend(record.topic).then((topic) => placeIn(ctx, record, topic, shardingKey));
  placeIn(ctx, record, known, shardingKey);
  return undefined;
}

function placeIn(ctx: BrokerContext, record: RecordInput, topic: TopicConfig, shardingKey: string | undefined): void {
  record.topic = topic.name;
  record.queueId = ctx.topics.selectQueue(topic, shardingKey);
}
