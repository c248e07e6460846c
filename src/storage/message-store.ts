import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { HalfmqError, IllegalStateError, InvalidArgumentError, MessageTooLargeError, ShuttingDownError, StorageError } from '../common/errors.js';
import { tagHash } from '../common/tags.js';
import { writeCheckpoint, writeCleanMarker } from './checkpoint.js';
import { CommitLog, commitLogDir, type RecordLocation } from './commit-log.js';
import { CQ_ENTRY_SIZE, CQ_TAG_HASH_AT } from './consume-queue.js';
import type { ConsumeQueueSet } from './consume-queue-set.js';
import { QueueOffsets } from './queue-offsets.js';
import type { DispatchItem, Dispatcher } from './dispatcher.js';
import { decodeDispatchInfo, decodeRecord, encodeRecord, stampRecord, validateRecordInput } from '../common/record-codec.js';
import { u32, u64 } from '../common/le.js';
import { recover, scanSegment } from './recovery.js';
import { encodeReleaseBody, releaseDispatchItems, type ReleasePointer } from './release-codec.js';
import {
  RecordType,
  type AppendResult,
  type DispatchListener,
  type MessageStoreOptions,
  type ReadQueueOptions,
  type ReadQueueResult,
  type QueueRecord,
  type QueueRecordsResult,
  type RecordInput,
  type ReleaseResult,
  type ReleaseTarget,
  type RecoveryReport,
  type StoredRecord,
  type StoreLog,
  type StoreState,
  type StoreStats,
} from './types.js';

type ResolvedOptions = Required<MessageStoreOptions>;

const DEFAULTS = {
  flushIntervalMs: 100,
  segmentSize: 1024 * 1024 * 1024,
  maxMessageSize: 4 * 1024 * 1024,
  cqEntriesPerFile: 300_000,
  checkpointIntervalMs: 1000,
  recentCacheBytes: 0,
  readCacheBlocks: 128,
  preallocateBytes: 0,
  preallocateMaxRate: 32 * 1024 * 1024,
  beforeCheckpoint: (): Promise<void> => Promise.resolve(),
};

const defaultLog: StoreLog = (level, message, context) => {
  if (level === 'info') return;
  (level === 'warn' ? console.warn : console.error)(`[halfmq storage] ${message}`, context ?? '');
};

function resolveOptions(options: MessageStoreOptions): ResolvedOptions {
  const resolved = { ...DEFAULTS, log: defaultLog, ...stripUndefined(options) } as ResolvedOptions;
  const bad = (why: string): never => {
    throw new InvalidArgumentError(`message store options: ${why}`);
  };
  if (typeof resolved.dataDir !== 'string' || resolved.dataDir === '') bad('dataDir is required');
  if (resolved.flush !== 'sync' && resolved.flush !== 'async') bad("flush must be 'sync' or 'async'");
  const positive = ['flushIntervalMs', 'maxMessageSize', 'cqEntriesPerFile', 'checkpointIntervalMs'] as const;
  for (const key of positive) if (!Number.isSafeInteger(resolved[key]) || resolved[key] < 1) bad(`${key} must be a positive integer`);
  if (!Number.isSafeInteger(resolved.segmentSize) || resolved.segmentSize < 4096) bad('segmentSize must be an integer >= 4096');
  if (!Number.isSafeInteger(resolved.recentCacheBytes) || resolved.recentCacheBytes < 0) bad('recentCacheBytes must be a non-negative integer');
  if (!Number.isSafeInteger(resolved.readCacheBlocks) || resolved.readCacheBlocks < 1) bad('readCacheBlocks must be a positive integer');
  if (!Number.isSafeInteger(resolved.preallocateBytes) || resolved.preallocateBytes < 0) bad('preallocateBytes must be a non-negative integer');
  if (typeof resolved.preallocateMaxRate !== 'number' || !(resolved.preallocateMaxRate > 0)) bad('preallocateMaxRate must be a positive number of bytes per second');
  return resolved;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The facade the broker uses: append to the commit log, read through consume queues. Lifecycle
 * `opening → open → closing → closed`; open() runs recovery before the store accepts anything.
 */
export class MessageStore {
  private currentState: StoreState = 'opening';
  private recoveryReport: RecoveryReport | undefined;
  private readonly options: ResolvedOptions;
  private readonly log: CommitLog<DispatchItem[]>;
  private queues!: ConsumeQueueSet;
  private dispatcher!: Dispatcher;
  /** Next queue offset to hand out per queue; assigned at append, ahead of what is visible. */
  private readonly queueOffsets = new QueueOffsets((topic, queueId) => this.queues.get(topic, queueId)?.maxOffset ?? 0);
  private lastStoreTimestamp = 0;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private checkpointing: Promise<void> | undefined;
  private lastCheckpointAt = -1;
  private closePromise: Promise<void> | undefined;
  private inflightReads = 0;
  private readsIdle: (() => void)[] = [];

  private constructor(options: ResolvedOptions, log: CommitLog<DispatchItem[]>) {
    this.options = options;
    this.log = log;
  }

  static async open(options: MessageStoreOptions): Promise<MessageStore> {
    const resolved = resolveOptions(options);
    await mkdir(resolved.dataDir, { recursive: true });
    let store: MessageStore | undefined;
    const log = await CommitLog.open<DispatchItem[]>(
      {
        dir: commitLogDir(resolved.dataDir),
        segmentSize: resolved.segmentSize,
        flush: resolved.flush,
        flushIntervalMs: resolved.flushIntervalMs,
        recentCacheBytes: resolved.recentCacheBytes,
        readCacheBlocks: resolved.readCacheBlocks,
        preallocateBytes: resolved.preallocateBytes,
        preallocateMaxRate: resolved.preallocateMaxRate,
        onWarning: (message, context) => resolved.log('warn', message, context),
      },
      (payloads) => store?.dispatcher.dispatchRound(payloads),
    );
    store = new MessageStore(resolved, log);
    try {
      const outcome = await recover({
        dataDir: resolved.dataDir,
        log,
        cqRoot: join(resolved.dataDir, 'consumequeue'),
        cqEntriesPerFile: resolved.cqEntriesPerFile,
        logFn: resolved.log,
      });
      store.queues = outcome.queues;
      store.dispatcher = outcome.dispatcher;
      store.recoveryReport = outcome.report;
      store.lastStoreTimestamp = outcome.lastStoreTimestamp;
      // What the checkpoint on disk says: if recovery went past it, the next checkpoint records it.
      store.lastCheckpointAt = outcome.report.fromOffset;
    } catch (err) {
      store.currentState = 'closed';
      await log.close().catch(() => undefined);
      if (err instanceof HalfmqError) throw err;
      throw new StorageError(`message store recovery failed in ${resolved.dataDir}`, { cause: err, context: { dataDir: resolved.dataDir } });
    }
    log.startFlushing();
    store.checkpointTimer = setInterval(() => {
      store.checkpoint().catch((err: unknown) => resolved.log('error', 'checkpoint failed', { error: String(err) }));
    }, resolved.checkpointIntervalMs);
    store.checkpointTimer.unref();
    store.currentState = 'open';
    return store;
  }

  get state(): StoreState {
    return this.currentState;
  }

  get recovery(): RecoveryReport {
    if (this.recoveryReport === undefined) throw new IllegalStateError('recovery has not run');
    return this.recoveryReport;
  }

  get stats(): StoreStats {
    return { ...this.log.stats };
  }

  private assertOpen(operation: string): void {
    if (this.currentState === 'open') return;
    const context = { operation, state: this.currentState };
    if (this.currentState === 'closing') throw new ShuttingDownError(`message store is closing; ${operation} refused`, { context });
    throw new IllegalStateError(`message store is ${this.currentState}; ${operation} refused`, { context });
  }

  private assertNotClosed(operation: string): void {
    if (this.currentState === 'closed') throw new IllegalStateError(`message store is closed; ${operation} refused`, { context: { operation } });
  }

  /**
   * All records of one call are written contiguously; queue offsets are assigned synchronously in
   * call order for NORMAL records (others get -1). Resolves when durable per flush mode and
   * dispatched. Rejects MessageTooLargeError, before assigning anything, if any body is too large.
   * A record that carries `encoded` is stamped in place rather than encoded (see RecordInput).
   */
  async append(records: RecordInput[]): Promise<AppendResult[]> {
    this.assertOpen('append');
    if (records.length === 0) return [];
    const { maxMessageSize, segmentSize } = this.options;
    for (const r of records) {
      if (r.body.byteLength > maxMessageSize) {
        throw new MessageTooLargeError(`message body of ${r.body.byteLength} bytes exceeds the limit of ${maxMessageSize}`, {
          context: { topic: r.topic, msgId: r.msgId, size: r.body.byteLength, limit: maxMessageSize },
        });
      }
      validateRecordInput(r);
    }
    // Monotonic, so binary search by time works even if the wall clock steps back.
    const storeTimestamp = Math.max(Date.now(), this.lastStoreTimestamp);
    this.lastStoreTimestamp = storeTimestamp;
    const queueOffsets: number[] = [];
    const buffers: Buffer[] = [];
    let appended: { offsets: number[]; durable: Promise<void> };
    try {
      for (let i = 0; i < records.length; i++) {
        const r = records[i]!;
        const queueOffset = r.type === RecordType.NORMAL ? this.queueOffsets.take(r.topic, r.queueId) : -1;
        queueOffsets.push(queueOffset);
        let buf = r.encoded;
        if (buf === undefined) buf = encodeRecord(r, queueOffset, storeTimestamp);
        else stampRecord(buf, r.type, r.queueId, queueOffset, storeTimestamp);
        if (buf.length > segmentSize) {
          throw new MessageTooLargeError(`record of ${buf.length} bytes exceeds the commit-log segment size ${segmentSize}`, {
            context: { topic: r.topic, msgId: r.msgId, size: buf.length, segmentSize },
          });
        }
        buffers.push(buf);
      }
      appended = this.log.append(buffers, (physical) =>
        records.map((r, i) => ({
          type: r.type,
          topic: r.topic,
          queueId: r.queueId,
          queueOffset: queueOffsets[i],
          physicalOffset: physical[i],
          size: buffers[i].length,
          tagHash: tagHash(r.tag),
        })),
      );
    } catch (err) {
      this.queueOffsets.giveBack(records, queueOffsets);
      throw err;
    }
    const { offsets, durable } = appended;
    await durable;
    return offsets.map((physicalOffset, i) => ({ physicalOffset, size: buffers[i].length, queueOffset: queueOffsets[i], storeTimestamp }));
  }

  /**
   * Makes held records (PREPARED, DELAYED) visible: assigns each a queue offset in its topic/queue,
   * synchronously and in call order like `append`, and appends one RELEASE record listing them.
   * Resolves once that record is durable and the entries are dispatched. The caller is responsible
   * for releasing a held record once (the broker's transaction and timer state machines do that).
   */
  async release(targets: ReleaseTarget[], meta: { topic: string; msgId: string; keys?: string[]; properties?: Record<string, string> }): Promise<ReleaseResult> {
    this.assertOpen('release');
    const queueOffsets: number[] = [];
    const pointers: ReleasePointer[] = targets.map((t) => {
      const queueOffset = this.queueOffsets.take(t.topic, t.queueId);
      queueOffsets.push(queueOffset);
      return { physicalOffset: t.physicalOffset, size: t.size, topic: t.topic, queueId: t.queueId, queueOffset, tagHash: tagHash(t.tag) };
    });
    const input: RecordInput = {
      type: RecordType.RELEASE,
      topic: meta.topic,
      queueId: 0,
      msgId: meta.msgId,
      keys: meta.keys ?? [],
      properties: meta.properties ?? {},
      body: encodeReleaseBody(pointers),
      bornTimestamp: Date.now(),
      reconsumeTimes: 0,
    };
    const storeTimestamp = Math.max(Date.now(), this.lastStoreTimestamp);
    this.lastStoreTimestamp = storeTimestamp;
    let appended: { offsets: number[]; durable: Promise<void> };
    try {
      validateRecordInput(input);
      const buf = encodeRecord(input, -1, storeTimestamp);
      appended = this.log.append([buf], (physical) => [releaseDispatchItems(pointers, { physicalOffset: physical[0]!, size: buf.length })].flat());
    } catch (err) {
      this.queueOffsets.giveBack(targets, queueOffsets);
      throw err;
    }
    const { offsets, durable } = appended;
    await durable;
    return { physicalOffset: offsets[0]!, queueOffsets: pointers.map((p) => p.queueOffset), storeTimestamp };
  }

  /**
   * Visits, in log order, every record from `fromOffset` to the end whose type is in `types`
   * (decoded, body copied). For the broker to rebuild its own indexes (transactions, timers) after
   * a crash from the range the last checkpoint does not cover: `recovery.fromOffset`.
   */
  async scan(fromOffset: number, types: ReadonlySet<number>, visit: (record: StoredRecord) => void | Promise<void>): Promise<number> {
    this.assertOpen('scan');
    let visited = 0;
    await this.trackRead(async () => {
      for (const segment of this.log.segmentList) {
        if (segment.end <= fromOffset) continue;
        const found: StoredRecord[] = [];
        await scanSegment(segment, Math.max(0, fromOffset - segment.start), (buf, at, offset) => {
          if (types.has(decodeDispatchInfo(buf, at).type)) found.push(decodeRecord(buf, offset, at, true));
        });
        for (const record of found) {
          await visit(record);
          visited++;
        }
      }
    });
    return visited;
  }

  /**
   * Scans up to maxEntries entries from fromOffset (from minOffset if it is below) and returns the
   * records whose tag hash is in tagHashes (all when undefined), decoded and checked. With maxBytes,
   * stops before the record that would take the records past it (always at least one record).
   * nextOffset is the offset after the last scanned entry; at or beyond the visible max: no
   * records, nextOffset = fromOffset. Bodies are views into one buffer holding all of the call's
   * records: copy one before keeping it alone.
   */
  async readQueue(topic: string, queueId: number, fromOffset: number, maxEntries: number, options: ReadQueueOptions = {}): Promise<ReadQueueResult> {
    const { records, nextOffset } = await this.readQueueRecords(topic, queueId, fromOffset, maxEntries, options);
    return {
      records: records.map(({ bytes, physicalOffset, queueOffset }) => {
        const record = decodeRecord(bytes, physicalOffset);
        // A released held record says -1 (or nothing useful) about its queue: the entry is the truth.
        record.queueOffset = queueOffset;
        return record;
      }),
      nextOffset,
    };
  }

  /**
   * readQueue without the decoding: each record's bytes as stored (a view, as readQueue's bodies)
   * with its queue offset. Only sizes are checked; whoever decodes the bytes checks their crc.
   */
  async readQueueRecords(topic: string, queueId: number, fromOffset: number, maxEntries: number, options: ReadQueueOptions = {}): Promise<QueueRecordsResult> {
    this.assertOpen('readQueue');
    if (!Number.isSafeInteger(fromOffset) || fromOffset < 0) throw new InvalidArgumentError('fromOffset must be a non-negative integer');
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 0) throw new InvalidArgumentError('maxEntries must be a non-negative integer');
    const cq = this.queues.get(topic, queueId);
    if (cq === undefined || fromOffset >= cq.maxOffset || maxEntries === 0) return { records: [], nextOffset: fromOffset };
    const start = Math.max(fromOffset, cq.minOffset);
    const end = Math.min(cq.maxOffset, start + maxEntries);
    return this.trackRead(async () => {
      const entries = await cq.readEntries(start, end - start);
      const locations: RecordLocation[] = [];
      const queueOffsets: number[] = [];
      const { tagHashes, maxBytes = Infinity } = options;
      for (let i = 0; i < end - start; i++) {
        const at = i * CQ_ENTRY_SIZE;
        if (tagHashes !== undefined && !tagHashes.has(u32(entries, at + CQ_TAG_HASH_AT))) continue;
        locations.push({ offset: u64(entries, at), size: u32(entries, at + 8) });
        queueOffsets.push(start + i);
      }
      // The entries give every size: cut at maxBytes first (always one record), then read only that.
      let count = 0;
      let total = 0;
      while (count < locations.length && (count === 0 || total + locations[count]!.size <= maxBytes)) total += locations[count++]!.size;
      const wanted = locations.length > count ? locations.slice(0, count) : locations;
      // One buffer for all of them, each record a view of it: a PULL reply sends it as it is.
      const out = Buffer.allocUnsafe(total);
      await this.log.copyAll(this.log.planReads(wanted), out);
      const records: QueueRecord[] = new Array(count);
      let at = 0;
      for (let i = 0; i < count; i++) {
        const size = wanted[i]!.size;
        records[i] = { bytes: out.subarray(at, at + size), physicalOffset: wanted[i]!.offset, queueOffset: queueOffsets[i]! };
        at += size;
      }
      return { records, nextOffset: count < locations.length ? queueOffsets[count]! : end };
    });
  }

  async readAt(physicalOffset: number): Promise<StoredRecord> {
    this.assertOpen('readAt');
    return this.trackRead(() => this.log.readAt(physicalOffset));
  }

  /** Visible (dispatched) entries are [minOffset, maxOffset); 0/0 for an unknown queue. */
  maxOffset(topic: string, queueId: number): number {
    this.assertNotClosed('maxOffset');
    return this.queues.get(topic, queueId)?.maxOffset ?? 0;
  }

  minOffset(topic: string, queueId: number): number {
    this.assertNotClosed('minOffset');
    return this.queues.get(topic, queueId)?.minOffset ?? 0;
  }

  /** First queue offset whose store timestamp is >= timestamp; maxOffset when there is none. */
  async offsetForTimestamp(topic: string, queueId: number, timestamp: number): Promise<number> {
    this.assertOpen('offsetForTimestamp');
    const cq = this.queues.get(topic, queueId);
    if (cq === undefined) return 0;
    return this.trackRead(async () => {
      let lo = cq.minOffset;
      let hi = cq.maxOffset;
      while (lo < hi) {
        const mid = Math.floor((lo + hi) / 2);
        const entry = await cq.readEntries(mid, 1);
        const storedAt = await this.log.readStoreTimestamp(u64(entry, 0));
        if (storedAt < timestamp) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    });
  }

  /** Called synchronously after entries become visible, once per dispatched batch per queue. */
  onDispatch(listener: DispatchListener): () => void {
    this.assertNotClosed('onDispatch');
    return this.dispatcher.onDispatch(listener);
  }

  private async trackRead<R>(read: () => Promise<R>): Promise<R> {
    this.inflightReads++;
    try {
      return await read();
    } finally {
      if (--this.inflightReads === 0) {
        const waiters = this.readsIdle;
        this.readsIdle = [];
        for (const w of waiters) w();
      }
    }
  }

  private checkpoint(): Promise<void> {
    this.checkpointing ??= this.writeCheckpointNow().finally(() => {
      this.checkpointing = undefined;
    });
    return this.checkpointing;
  }

  /** Log durable up to D, queue files fsynced, then the checkpoint claims D. */
  private async writeCheckpointNow(): Promise<void> {
    const dispatchedUpTo = this.dispatcher.dispatchedUpTo;
    if (dispatchedUpTo === this.lastCheckpointAt) return;
    const queues = this.queues.counts();
    // Indexes the broker derives from records below dispatchedUpTo must be durable before the
    // checkpoint says recovery may skip those records.
    await this.options.beforeCheckpoint();
    await this.log.sync();
    await this.queues.syncAll();
    await writeCheckpoint(this.options.dataDir, { dispatchedUpTo, queues });
    this.lastCheckpointAt = dispatchedUpTo;
  }

  /**
   * Stops accepting appends (ShuttingDownError while closing, IllegalStateError after), lets
   * in-flight writes and reads finish, syncs everything, checkpoints, writes the clean marker.
   */
  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
  }

  private async shutdown(): Promise<void> {
    if (this.currentState !== 'open') {
      this.currentState = 'closed';
      return;
    }
    this.currentState = 'closing';
    if (this.checkpointTimer !== undefined) clearInterval(this.checkpointTimer);
    try {
      await this.log.drain();
      if (this.inflightReads > 0) await new Promise<void>((resolve) => this.readsIdle.push(resolve));
      await this.checkpointing?.catch(() => undefined);
      const healthy = this.log.failed === undefined;
      try {
        await this.log.close();
        await this.writeCheckpointNow();
      } finally {
        await this.queues.closeAll();
      }
      if (healthy) await writeCleanMarker(this.options.dataDir);
    } finally {
      this.currentState = 'closed';
    }
  }
}
