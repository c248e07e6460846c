import { InvalidArgumentError, NotAMemberError } from '../../common/errors.js';
import { validateName } from '../../common/names.js';
import { decodeRecord } from '../../common/record-codec.js';
import type { JoinGroupResponse, MessageRef, PullResponse, QueueAcks, RawPullResponse, StartFrom, WireDeliveredMessage } from '../../protocol/commands.js';
import type { GroupSettings } from '../consumer-group.js';
import { toWireDelivered } from '../delivery-view.js';
import { DEFAULT_MAX_RECONSUME_TIMES, MAX_RECONSUME_TIMES } from '../retry-policy.js';
import { joinParts, packBodies } from '../../protocol/message-codec.js';
import type { BrokerContext, Processor, Session } from '../context.js';
import { asObject, optInt, optString, reqInt } from '../validate.js';

const MAX_PULL = 1024;
const MAX_WAIT_MS = 120_000;

/**
 * JOIN_GROUP {group, subscriptions, startFrom?, orderly?, mode?, maxReconsumeTimes?} → {memberId}.
 * Every subscribed topic must exist. Members of a clustering group also subscribe to the group's
 * retry topic `%RETRY%<group>` (created here), where failed messages come back from.
 */
export const joinGroup: Processor = async (ctx, session, { payload }) => {
  const d = asObject(payload, 'JOIN_GROUP payload');
  const groupName = validateName('group', d.group);
  const subscriptions = asObject(d.subscriptions, 'subscriptions') as Record<string, unknown>;
  const topics = Object.keys(subscriptions);
  if (topics.length === 0) throw new InvalidArgumentError('subscriptions must name at least one topic');
  const subs: Record<string, string> = {};
  for (const topic of topics) {
    ctx.topics.require(topic);
    subs[topic] = optString(subscriptions, topic, `tag expression of ${topic}`) ?? '*';
  }
  const startFrom = parseStartFrom(d.startFrom);
  const settings = parseSettings(d);
  // A broadcast member's group is its own; resending its dead letters is not supported.
  if (!settings.broadcast) subs[await ctx.retries.ensureRetryTopic(groupName)] = '*';
  const group = await ctx.groups.get(groupName);
  const previous = session.memberships.get(groupName);
  if (previous) group.leave(previous);
  const memberId = `${session.clientId ?? 'client'}#${session.id}`;
  await group.join({ id: memberId, clientId: session.clientId ?? '', address: session.address }, subs, startFrom, settings);
  session.memberships.set(groupName, memberId);
  ctx.log('info', `consumer ${memberId} joined group ${groupName}`, { topics });
  const reply: JoinGroupResponse = { memberId };
  return { payload: reply };
};

/** LEAVE_GROUP {group}: its queues go to the others, its un-acked messages come back. */
export const leaveGroup: Processor = (ctx, session, { payload }) => {
  const groupName = validateName('group', asObject(payload, 'LEAVE_GROUP payload').group);
  leaveAll(ctx, session, groupName);
  return { payload: {} };
};

export function leaveAll(ctx: BrokerContext, session: Session, only?: string): void {
  for (const [groupName, memberId] of session.memberships) {
    if (only !== undefined && groupName !== only) continue;
    ctx.groups.peek(groupName)?.leave(memberId);
    session.memberships.delete(groupName);
    ctx.log('info', `consumer ${memberId} left group ${groupName}`);
  }
}

/**
 * PULL {group, max, waitMs, invisibleMs?, raw?} → {o, r} + the records as stored, or without `raw`
 * {messages} + bodies; held up to waitMs when there is nothing to hand out.
 */
export const pull: Processor = async (ctx, session, { payload }) => {
  const d = asObject(payload, 'PULL payload');
  const groupName = validateName('group', d.group);
  const memberId = session.memberships.get(groupName);
  if (!memberId) throw new NotAMemberError(`this connection has not joined group ${groupName}`, { context: { group: groupName } });
  const max = optInt(d, 'max', 1, MAX_PULL, 32);
  const waitMs = optInt(d, 'waitMs', 0, MAX_WAIT_MS, 0);
  const invisibleMs = optInt(d, 'invisibleMs', 100, 12 * 3600_000, ctx.options.defaultInvisibleMs);
  const group = await ctx.groups.get(groupName);
  const deliveries = await group.pull(memberId, max, waitMs, invisibleMs);
  const n = deliveries.length;
  if (d.raw === true) {
    const reply: RawPullResponse = { o: new Array(n), r: new Array(n) };
    const records: Buffer[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const delivery = deliveries[i]!;
      reply.o[i] = delivery.queueOffset;
      reply.r[i] = delivery.reconsumeTimes;
      records[i] = delivery.bytes;
    }
    return { payload: reply, body: n > 0 ? joinParts(records) : undefined };
  }
  // Clients that do not ask for records get each message decoded, and its bodies alone.
  const messages: WireDeliveredMessage[] = new Array(n);
  const bodies: Buffer[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const { bytes: stored, physicalOffset, queueOffset, reconsumeTimes } = deliveries[i]!;
    const record = decodeRecord(stored, physicalOffset);
    record.queueOffset = queueOffset;
    messages[i] = toWireDelivered(record, reconsumeTimes);
    bodies[i] = record.body;
  }
  const reply: PullResponse = { messages };
  return { payload: reply, body: n > 0 ? packBodies(bodies) : undefined };
};

/**
 * ACK {group, items?, byQueue?}: processed. Accepted from any connection: an ack after a reconnect
 * counts. `byQueue` lists the offsets of one queue together, so the broker looks each queue up once.
 */
export const ack: Processor = async (ctx, _session, { payload }) => {
  const d = asObject(payload, 'ACK payload');
  const group = await ctx.groups.get(validateName('group', d.group));
  if (d.items !== undefined) for (const [topic, queueId, offset] of refs(d.items)) group.ack(topic, queueId, [offset]);
  if (d.byQueue !== undefined) for (const [topic, queueId, offsets] of queueAcks(d.byQueue)) group.ack(topic, queueId, offsets);
  return { payload: {} };
};

/**
 * NACK {group, items, reason?}: not consumed; each message comes again after the retry schedule's
 * delay, or goes to the dead-letter queue past the group's maxReconsumeTimes. Answered once the
 * retry (or dead-letter) copies are stored.
 */
export const nack: Processor = async (ctx, _session, { payload }) => {
  const d = asObject(payload, 'NACK payload');
  const group = await ctx.groups.get(validateName('group', d.group));
  const reason = (optString(d, 'reason') ?? 'nacked by the consumer').slice(0, 1024);
  await Promise.all(refs(d.items).map(([topic, queueId, offset]) => group.nack(topic, queueId, offset, reason)));
  return { payload: {} };
};

function refs(items: unknown): MessageRef[] {
  if (!Array.isArray(items)) throw new InvalidArgumentError('items must be an array of [topic, queueId, queueOffset]');
  return items.map((item, i) => {
    if (!Array.isArray(item) || item.length !== 3 || typeof item[0] !== 'string') {
      throw new InvalidArgumentError(`items[${i}] must be [topic, queueId, queueOffset]`);
    }
    return [item[0], reqInt(item[1], `items[${i}] queueId`), reqInt(item[2], `items[${i}] queueOffset`)];
  });
}

function queueAcks(value: unknown): QueueAcks[] {
  if (!Array.isArray(value)) throw new InvalidArgumentError('byQueue must be an array of [topic, queueId, queueOffsets]');
  for (let i = 0; i < value.length; i++) {
    const entry: unknown = value[i];
    if (!Array.isArray(entry) || entry.length !== 3 || typeof entry[0] !== 'string' || !Array.isArray(entry[2])) {
      throw new InvalidArgumentError(`byQueue[${i}] must be [topic, queueId, queueOffsets]`);
    }
    reqInt(entry[1], `byQueue[${i}] queueId`);
    for (const offset of entry[2] as unknown[]) reqInt(offset, `byQueue[${i}] queueOffset`);
  }
  return value as QueueAcks[];
}

function parseSettings(d: Record<string, unknown>): GroupSettings {
  const orderly = d.orderly === undefined || d.orderly === null ? false : d.orderly;
  if (typeof orderly !== 'boolean') throw new InvalidArgumentError('orderly must be a boolean');
  const mode = d.mode ?? 'clustering';
  if (mode !== 'clustering' && mode !== 'broadcast') throw new InvalidArgumentError(`mode must be 'clustering' or 'broadcast', got ${JSON.stringify(mode)}`);
  const maxReconsumeTimes = optInt(d, 'maxReconsumeTimes', 0, MAX_RECONSUME_TIMES, DEFAULT_MAX_RECONSUME_TIMES);
  return { orderly, broadcast: mode === 'broadcast', inPlaceRetry: orderly || mode === 'broadcast', maxReconsumeTimes };
}

function parseStartFrom(value: unknown): StartFrom {
  if (value === undefined || value === null || value === 'earliest') return 'earliest';
  if (value === 'latest') return 'latest';
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  throw new InvalidArgumentError(`startFrom must be 'earliest', 'latest' or a timestamp in ms, got ${JSON.stringify(value)}`);
}
