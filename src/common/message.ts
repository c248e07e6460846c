/** What a producer sends. `body` as a string is UTF-8 encoded. */
export interface Message {
  topic: string;
  body: string | Uint8Array;
  tag?: string;
  keys?: string | string[];
  properties?: Record<string, string>;
  /** Messages with the same sharding key always land in the same queue of the topic. */
  shardingKey?: string;
  /**
   * Deliver at this time (ms since epoch, as the broker's clock reads it) instead of at once. Held
   * durably by the broker until then, across restarts. Not together with `delayMs`.
   */
  deliverAt?: number;
  /** Deliver this many ms after the broker stores the message. Not together with `deliverAt`. */
  delayMs?: number;
}

export interface SendResult {
  msgId: string;
  topic: string;
  queueId: number;
  queueOffset: number;
}

/** What a consumer receives. */
export interface ReceivedMessage {
  msgId: string;
  topic: string;
  queueId: number;
  queueOffset: number;
  tag?: string;
  keys: string[];
  properties: Record<string, string>;
  body: Buffer;
  bornTimestamp: number;
  storeTimestamp: number;
  /** How many times this message was delivered before this delivery (0 on the first). */
  reconsumeTimes: number;
  /**
   * Where the broker keeps this delivery when that is not topic/queueId/queueOffset: a retry is
   * shown as the original message but lives in the group's retry topic. Acks and nacks use it.
   */
  ackRef?: [topic: string, queueId: number, queueOffset: number];
}

/** Normalises `keys` to an array without empty strings. */
export function normalizeKeys(keys: string | string[] | undefined): string[] {
  if (keys === undefined) return [];
  return (Array.isArray(keys) ? keys : [keys]).filter((k) => k.length > 0);
}

/** A message in a consumer group's dead-letter queue (`%DLQ%<group>`), as the broker and Admin describe it. */
export interface DeadLetterMessage {
  msgId: string;
  /** the topic, queue and queue offset it was sent to */
  topic: string;
  queueId: number;
  queueOffset: number;
  /** its position in the dead-letter queue */
  dlqOffset: number;
  tag?: string;
  keys: string[];
  properties: Record<string, string>;
  /** the last failure: the handler's error message, a nack reason, or "lease expired before an ack" */
  reason: string;
  reconsumeTimes: number;
  bornTimestamp: number;
  /** when it was dead-lettered */
  deadAt: number;
  body: Buffer;
}
