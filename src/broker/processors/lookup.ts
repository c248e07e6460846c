import { MessageNotFoundError } from '../../common/errors.js';
import { validateName } from '../../common/names.js';
import { packBodies } from '../../protocol/message-codec.js';
import type { MessageLookupResponse, WireStoredMessage } from '../../protocol/reliability-commands.js';
import { RecordType } from '../../storage/index.js';
import type { StoredRecord } from '../../storage/index.js';
import type { Processor, Reply } from '../context.js';
import { toWireDelivered } from '../delivery-view.js';
import { SystemProperty } from '../../common/system-properties.js';
import { asObject, optInt, reqString } from '../validate.js';

const MAX_FIND = 1000;

/** MESSAGE_GET {msgId} → {messages} + bodies: every stored copy; none is MESSAGE_NOT_FOUND. */
export const messageGet: Processor = async (ctx, _session, { payload }) => {
  const msgId = reqString(asObject(payload, 'MESSAGE_GET payload'), 'msgId');
  const reply = lookupReply(await ctx.lookup.byId(msgId, 16));
  if ((reply.payload as MessageLookupResponse).messages.length === 0) {
    throw new MessageNotFoundError(`no message with id ${msgId} (never sent, or removed by retention)`, { context: { msgId } });
  }
  return reply;
};

/** MESSAGE_FIND {topic, key, limit?} → {messages} + bodies, oldest first; none is an empty list. */
export const messageFind: Processor = async (ctx, _session, { payload }) => {
  const d = asObject(payload, 'MESSAGE_FIND payload');
  const topic = validateName('topic', d.topic);
  const key = reqString(d, 'key');
  const limit = optInt(d, 'limit', 1, MAX_FIND, 100);
  return lookupReply(await ctx.lookup.byKey(topic, key, limit));
};

function lookupReply(records: StoredRecord[]): Reply {
  const reply: MessageLookupResponse = { messages: records.map(toWireStored) };
  return { payload: reply, body: records.length > 0 ? packBodies(records.map((r) => r.body)) : undefined };
}

function toWireStored(r: StoredRecord): WireStoredMessage {
  const { h: _, ...m } = toWireDelivered(r, r.reconsumeTimes);
  const stored: WireStoredMessage = m;
  if (r.type === RecordType.DELAYED) stored.deliverAt = Number(r.properties[SystemProperty.DELIVER_AT]);
  return stored;
}
