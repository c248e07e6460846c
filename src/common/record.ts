/**
 * The record: the unit the commit log stores and a PULL reply carries (record-codec.ts has the
 * byte layout).
 */

/**
 * What a commit-log record is. NORMAL records get a consume-queue entry (become visible) when they
 * are durable. PREPARED (transaction halves) and DELAYED (delayed deliveries and retries) are HELD:
 * stored durably, invisible until a RELEASE record points at them, which gives them queue entries
 * without copying them. TX_OP is transaction bookkeeping (rollback, park), never dispatched.
 * Unknown types are stored and not dispatched, so an older reader survives a newer writer.
 */
export const RecordType = { NORMAL: 0, PREPARED: 1, TX_OP: 2, RELEASE: 3, DELAYED: 4 } as const;
export type RecordTypeValue = (typeof RecordType)[keyof typeof RecordType];

export interface RecordInput {
  type: number;
  topic: string;
  queueId: number;
  msgId: string;
  tag?: string;
  keys: string[];
  properties: Record<string, string>;
  body: Uint8Array;
  bornTimestamp: number;
  reconsumeTimes: number;
  /**
   * The record already in commit-log form, as a producer sent it (SEND `records`) and
   * decoded into the fields above: the store stamps these bytes (stampRecord) instead of encoding
   * the fields again.
   */
  encoded?: Buffer;
}

export interface StoredRecord {
  physicalOffset: number;
  /** Whole record size in the commit log, header included. */
  size: number;
  type: number;
  topic: string;
  queueId: number;
  /**
   * Position in its queue. Read through a queue (readQueue) it is the queue entry's offset, also for
   * released held records; read by position (readAt, scan) it is what the record says: -1 for
   * every non-NORMAL type.
   */
  queueOffset: number;
  msgId: string;
  tag?: string;
  keys: string[];
  properties: Record<string, string>;
  body: Buffer;
  bornTimestamp: number;
  storeTimestamp: number;
  reconsumeTimes: number;
}
