/**
 * Types shared by the storage modules and exposed to the broker. Implementations stay terse; the
 * documentation of the store's behaviour lives here and on MessageStore.
 */

/**
 * What a commit-log record is. Only NORMAL records get a consume-queue entry (become visible);
 * PREPARED (transaction halves) and TX_OP (transaction bookkeeping) are stored and never dispatched.
 * Unknown types are stored and not dispatched, so an older reader survives a newer writer.
 */
export const RecordType = { NORMAL: 0, PREPARED: 1, TX_OP: 2 } as const;
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
}

export interface StoredRecord {
  physicalOffset: number;
  /** Whole record size in the commit log, header included. */
  size: number;
  type: number;
  topic: string;
  queueId: number;
  /** -1 for records that are not in a queue (every non-NORMAL type). */
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

export interface AppendResult {
  physicalOffset: number;
  size: number;
  queueOffset: number;
  storeTimestamp: number;
}

export interface RecoveryReport {
  /** The previous close was clean (the marker was present). */
  cleanShutdown: boolean;
  /** Physical offset the commit-log scan started at. */
  fromOffset: number;
  scannedRecords: number;
  /** NORMAL records whose consume-queue entry was (re)written. */
  redispatched: number;
  /** Bytes cut from the commit log (torn tail plus deleted later segments). */
  truncatedBytes: number;
  durationMs: number;
}

export interface StoreStats {
  /** append() calls accepted. */
  appends: number;
  records: number;
  /** Commit-log bytes written. */
  bytes: number;
  /** writev calls on the commit log. */
  writes: number;
  /** fdatasync calls on the commit log (consume-queue fsyncs are not counted). */
  fsyncs: number;
}

export type StoreLogLevel = 'info' | 'warn' | 'error';
export type StoreLog = (level: StoreLogLevel, message: string, context?: Record<string, unknown>) => void;

export interface MessageStoreOptions {
  dataDir: string;
  flush: 'sync' | 'async';
  /** async mode: fdatasync interval. Default 100. */
  flushIntervalMs?: number;
  /** Commit-log segment size. Default 1 GiB. */
  segmentSize?: number;
  /** Body limit. Default 4 MiB. */
  maxMessageSize?: number;
  /** Entries per consume-queue file. Default 300_000. */
  cqEntriesPerFile?: number;
  /** How often consume queues are fsynced and the checkpoint written. Default 1000. */
  checkpointIntervalMs?: number;
  log?: StoreLog;
}

export type StoreState = 'opening' | 'open' | 'closing' | 'closed';

export interface ReadQueueOptions {
  /** Only records whose consume-queue tag hash is in this set (all when undefined). */
  tagHashes?: ReadonlySet<number>;
  /** Stop before the record that would take the bodies past this many bytes (at least one record). */
  maxBytes?: number;
}

export interface ReadQueueResult {
  records: StoredRecord[];
  nextOffset: number;
}

export type DispatchListener = (topic: string, queueId: number, maxOffset: number) => void;
