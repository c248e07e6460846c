import type { GroupRef, WireDeliveredMessage } from './commands.js';

/**
 * Payloads of the dead-letter and lookup commands (codes in commands.ts, 60-79). Message bodies
 * travel in the frame body back to back, each entry's `n` giving its length (message-codec.ts).
 *
 *   DLQ_LIST     c→b { group, limit? }          → { messages: WireDeadLetter[] } + bodies
 *                    entries neither resent nor purged, oldest first (default limit 1000)
 *   DLQ_RESEND   c→b { group, msgId? | all? }   → { resent: string[] }
 *                    delivered to the group again with a fresh retry count; each entry once.
 *                    An msgId with no open entry fails with MESSAGE_NOT_FOUND.
 *   DLQ_PURGE    c→b { group }                  → { purged }   every open entry discarded
 *   MESSAGE_GET  c→b { msgId }                  → { messages: WireStoredMessage[] } + bodies
 *                    every stored copy with this id (a producer retry may have stored two);
 *                    none: MESSAGE_NOT_FOUND
 *   MESSAGE_FIND c→b { topic, key, limit? }     → { messages: WireStoredMessage[] } + bodies
 *                    messages of the topic carrying the key, oldest first (default limit 100)
 *
 * Lookups see messages stored through SEND; the index is written a few ms after the reply.
 */
export interface DlqListRequest extends GroupRef {
  limit?: number;
}

/** A dead letter as listed: where it came from, why it failed, and its position in the DLQ. */
export interface WireDeadLetter {
  id: string;
  /** original topic, queue and queue offset */
  t: string;
  q: number;
  o: number;
  /** position in the DLQ */
  dlqOffset: number;
  g?: string;
  k?: string[];
  p?: Record<string, string>;
  reason: string;
  /** deliveries before the last one */
  r: number;
  b: number;
  /** when it was dead-lettered */
  deadAt: number;
  n: number;
}

export interface DlqListResponse {
  messages: WireDeadLetter[];
}

export interface DlqResendRequest extends GroupRef {
  msgId?: string;
  all?: boolean;
}

export interface DlqResendResponse {
  resent: string[];
}

export interface DlqPurgeResponse {
  purged: number;
}

export interface MessageGetRequest {
  msgId: string;
}

export interface MessageFindRequest {
  topic: string;
  key: string;
  limit?: number;
}

/** A stored message as looked up; `o` is -1 while a delayed message is not yet delivered. */
export interface WireStoredMessage extends Omit<WireDeliveredMessage, 'h'> {
  /** deliver time of a delayed message */
  deliverAt?: number;
}

export interface MessageLookupResponse {
  messages: WireStoredMessage[];
}
