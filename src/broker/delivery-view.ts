import type { WireDeliveredMessage } from '../protocol/commands.js';
import type { StoredRecord } from '../storage/index.js';
import { originOf, userProperties } from '../common/system-properties.js';

/**
 * How a stored record is shown to a consumer (client/message-convert.ts does the same for records
 * pulled as stored). A retry copy (it carries ORIGIN_TOPIC) is shown as the message the user sent:
 * original topic, queue, offset and id, with the retry topic position in `h` for the ack.
 * Broker-internal properties are never shown.
 */
export function toWireDelivered(r: StoredRecord, reconsumeTimes: number): WireDeliveredMessage {
  const origin = originOf(r.properties);
  const m: WireDeliveredMessage = { id: r.msgId, t: r.topic, q: r.queueId, o: r.queueOffset, b: r.bornTimestamp, st: r.storeTimestamp, r: reconsumeTimes, n: r.body.length };
  if (origin !== undefined) {
    m.h = [r.topic, r.queueId, r.queueOffset];
    m.t = origin.topic;
    m.q = origin.queueId;
    m.o = origin.queueOffset;
  }
  if (r.tag !== undefined) m.g = r.tag;
  if (r.keys.length > 0) m.k = r.keys;
  const properties = userProperties(r.properties);
  if (Object.keys(properties).length > 0) m.p = properties;
  return m;
}
