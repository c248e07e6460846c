/**
 * Properties the broker itself writes on retry, delayed and dead-letter records. They ride in the
 * record's property map (so they survive in the log without a new record format) and are stripped
 * before a message is shown to a consumer (by the consumer itself when it pulls records as stored),
 * so a user sees exactly the properties they sent.
 */
export const SystemProperty = {
  /** broker-clock ms at which a DELAYED record is released */
  DELIVER_AT: '__DELIVER_AT',
  /** topic / queue / queue offset the message was first delivered from (retry and DLQ copies) */
  ORIGIN_TOPIC: '__ORIGIN_TOPIC',
  ORIGIN_QUEUE: '__ORIGIN_QUEUE',
  ORIGIN_OFFSET: '__ORIGIN_OFFSET',
  /** why the last delivery failed: the handler's error message, or "lease expired" */
  FAILURE_REASON: '__FAILURE_REASON',
} as const;

/**
 * Properties every half message carries: the transaction's id and producer group. The log replay
 * rebuilds the transaction table from them, and consumers of a committed message see them.
 */
export const TX_ID_PROPERTY = '__TX_ID';
export const TX_GROUP_PROPERTY = '__TX_GROUP';

const SYSTEM_KEYS: ReadonlySet<string> = new Set(Object.values(SystemProperty));

/** The user's own properties: the map without the broker's keys (the same object if it has none). */
export function userProperties(properties: Record<string, string>): Record<string, string> {
  let out: Record<string, string> | undefined;
  for (const key in properties) {
    if (!SYSTEM_KEYS.has(key)) continue;
    out ??= { ...properties };
    delete out[key];
  }
  return out ?? properties;
}

/**
 * Where a retry copy (it carries ORIGIN_TOPIC) is shown to a consumer: the topic, queue and offset
 * the message was first delivered from. Undefined for any other record.
 */
export function originOf(properties: Record<string, string>): { topic: string; queueId: number; queueOffset: number } | undefined {
  const topic = properties[SystemProperty.ORIGIN_TOPIC];
  if (topic === undefined) return undefined;
  return { topic, queueId: Number(properties[SystemProperty.ORIGIN_QUEUE] ?? -1), queueOffset: Number(properties[SystemProperty.ORIGIN_OFFSET] ?? -1) };
}

export function isSystemProperty(key: string): boolean {
  return SYSTEM_KEYS.has(key);
}

/** Per-group system topics, as in RocketMQ. */
export function retryTopicOf(group: string): string {
  return `%RETRY%${group}`;
}

export function dlqTopicOf(group: string): string {
  return `%DLQ%${group}`;
}
