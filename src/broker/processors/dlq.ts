import { InvalidArgumentError } from '../../common/errors.js';
import { validateName } from '../../common/names.js';
import type { DlqListResponse, DlqPurgeResponse, DlqResendResponse, WireDeadLetter } from '../../protocol/reliability-commands.js';
import { packBodies } from '../../protocol/message-codec.js';
import type { DeadLetter } from '../dead-letter.js';
import type { Processor } from '../context.js';
import { asObject, optInt, optString } from '../validate.js';

const MAX_LIST = 10_000;

/** DLQ_LIST {group, limit?} → {messages} + bodies: open dead letters, oldest first. */
export const dlqList: Processor = async (ctx, _session, { payload }) => {
  const d = asObject(payload, 'DLQ_LIST payload');
  const group = validateName('group', d.group);
  const limit = optInt(d, 'limit', 1, MAX_LIST, 1000);
  const letters = await ctx.deadLetters.list(group, limit);
  const reply: DlqListResponse = { messages: letters.map(toWire) };
  return { payload: reply, body: letters.length > 0 ? packBodies(letters.map((l) => l.body)) : undefined };
};

/** DLQ_RESEND {group, msgId? | all?} → {resent}: delivered to the group again, fresh retry count. */
export const dlqResend: Processor = async (ctx, _session, { payload }) => {
  const d = asObject(payload, 'DLQ_RESEND payload');
  const group = validateName('group', d.group);
  const msgId = optString(d, 'msgId', 'msgId');
  const all = d.all === true;
  if ((msgId === undefined || msgId === '') === !all) throw new InvalidArgumentError('DLQ_RESEND needs exactly one of msgId or all: true');
  const resent = await ctx.deadLetters.resend(group, all ? 'all' : { msgId: msgId! });
  if (resent.length > 0) ctx.log('info', `group ${group}: resent ${resent.length} dead letter(s)`);
  const reply: DlqResendResponse = { resent: resent.map((l) => l.msgId) };
  return { payload: reply };
};

/** DLQ_PURGE {group} → {purged}: every open dead letter discarded (marked handled, not deleted). */
export const dlqPurge: Processor = async (ctx, _session, { payload }) => {
  const group = validateName('group', asObject(payload, 'DLQ_PURGE payload').group);
  const purged = await ctx.deadLetters.purge(group);
  if (purged > 0) ctx.log('info', `group ${group}: purged ${purged} dead letter(s)`);
  const reply: DlqPurgeResponse = { purged };
  return { payload: reply };
};

function toWire(l: DeadLetter): WireDeadLetter {
  const w: WireDeadLetter = {
    id: l.msgId,
    t: l.topic,
    q: l.queueId,
    o: l.queueOffset,
    dlqOffset: l.dlqOffset,
    reason: l.reason,
    r: l.reconsumeTimes,
    b: l.bornTimestamp,
    deadAt: l.deadAt,
    n: l.body.length,
  };
  if (l.tag !== undefined) w.g = l.tag;
  if (l.keys.length > 0) w.k = l.keys;
  if (Object.keys(l.properties).length > 0) w.p = l.properties;
  return w;
}
