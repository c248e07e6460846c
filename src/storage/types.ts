/**
 * Types shared by the storage modules and exposed to the broker. Implementations stay terse; the
 * documentation of the store's behaviour lives here and on MessageStore.
 */

import type { StoredRecord } from '../common/record.js';

export { RecordType, type RecordTypeValue, type RecordInput, type StoredRecord } from '../common/record.js';

/** A held record (PREPARED, DELAYED) to make visible in `topic`/`queueId`. */
export interface ReleaseTarget {
  physicalOffset: number;
  size: number;
  topic: string;
  queueId: number;
  tag?: string;
}

export interface ReleaseResult {
  /** where the RELEASE record itself was written */
  physicalOffset: number;
  /** the queue offset each target got, in order */
  queueOffsets: number[];
  storeTimestamp: number;
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
  /**
   * Durability barriers on the commit log: fdatasync calls, plus O_DSYNC writes in sync mode
   * (consume-queue fsyncs are not counted).
   */
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
  /**
   * Bytes of the most recently written records kept in memory to serve reads without file I/O
   * (consumers that keep up): one ring of this size, allocated at the first write. Default 0
   * (off); the broker turns it on.
   */
  recentCacheBytes?: number;
  /**
   * Older records are read from the files in aligned 1 MiB blocks, and this many of the blocks
   * read last are kept, so the other queues whose records lie in a block read it from memory.
   * Default 128 (128 MiB). The queues of a drain drift apart; with 32, a drain of 8 queues read
   * each block about three times.
   */
  readCacheBlocks?: number;
  /**
   * Zero-filled, synced bytes kept ahead of the tail segment's data, written in the background, so
   * that appends overwrite in place instead of growing the file (a cheaper fdatasync). Recovery
   * treats an all-zero tail as free space. Default 0 (off); the broker turns it on.
   */
  preallocateBytes?: number;
  /**
   * Preallocation pauses while the log is being written faster than this many bytes per second.
   * Under sustained load the zero-fill doubles the bytes the disk writes and costs the writer a
   * thread-pool call per 256 KiB, more than in-place writes save; at light load it is what makes a
   * lone send fast. Default 32 MiB/s.
   */
  preallocateMaxRate?: number;
  /** Entries per consume-queue file. Default 300_000. */
  cqEntriesPerFile?: number;
  /** How often consume queues are fsynced and the checkpoint written. Default 1000. */
  checkpointIntervalMs?: number;
  /**
   * Runs before each checkpoint is recorded (and at close). The broker makes the indexes it derives
   * from held records durable here, so that after a crash `recovery.fromOffset` is a safe place to
   * rebuild them from (see `scan`).
   */
  beforeCheckpoint?: () => Promise<void>;
  log?: StoreLog;
}

export type StoreState = 'opening' | 'open' | 'closing' | 'closed';

export interface ReadQueueOptions {
  /** Only records whose consume-queue tag hash is in this set (all when undefined). */
  tagHashes?: ReadonlySet<number>;
  /** Stop before the record that would take the records past this many bytes (at least one record). */
  maxBytes?: number;
}

export interface ReadQueueResult {
  records: StoredRecord[];
  nextOffset: number;
}

/** A record as stored, read through its queue. */
export interface QueueRecord {
  /**
   * the whole record (see common/record-codec.ts), not yet checked: a view of the one buffer that
   * holds all of its read's records back to back
   */
  bytes: Buffer;
  physicalOffset: number;
  /** the queue entry's offset (the record's own field says -1 for a released held record) */
  queueOffset: number;
}

export interface QueueRecordsResult {
  records: QueueRecord[];
  nextOffset: number;
}

export type DispatchListener = (topic: string, queueId: number, maxOffset: number) => void;
