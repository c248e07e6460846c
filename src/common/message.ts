/** What a producer sends. `body` as a string is UTF-8 encoded. */
export interface Message {
  topic: string;
  body: string | Uint8Array;
  tag?: string;
  keys?: string | string[];
  properties?: Record<string, string>;
  /** Messages with the same sharding key always land in the same queue of the topic. */
  shardingKey?: string;
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
}

/** Normalises `keys` to an array without empty strings. */
export function normalizeKeys(keys: string | string[] | undefined): string[] {
  if (keys === undefined) return [];
  return (Array.isArray(keys) ? keys : [keys]).filter((k) => k.length > 0);
}
