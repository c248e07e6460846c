import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CorruptDataError, InvalidArgumentError, StorageError } from '../common/errors.js';
import { BlockCache } from './block-cache.js';
import { RecentRecords } from './recent-records.js';
import { listOffsetFiles, fsyncDir } from './fs-util.js';
import { decodeRecord, MIN_RECORD_SIZE, STORE_TIMESTAMP_AT } from '../common/record-codec.js';
import { u32, u64 } from '../common/le.js';
import { Segment, type SegmentFileOptions } from './segment.js';
import type { StoreStats, StoredRecord } from './types.js';

export interface CommitLogOptions {
  dir: string;
  segmentSize: number;
  flush: 'sync' | 'async';
  flushIntervalMs: number;
  /** see MessageStoreOptions.recentCacheBytes; 0 = off */
  recentCacheBytes?: number;
  /** see MessageStoreOptions.readCacheBlocks; default 128 */
  readCacheBlocks?: number;
  /** see MessageStoreOptions.preallocateBytes; 0 = off */
  preallocateBytes?: number;
  /** see MessageStoreOptions.preallocateMaxRate; default no limit */
  preallocateMaxRate?: number;
  /** where a failed preallocation is reported */
  onWarning?: (message: string, context: Record<string, unknown>) => void;
}

/** Where a record lives: its physical offset and whole size (what a consume-queue entry holds). */
export interface RecordLocation {
  offset: number;
  size: number;
}

/** One positional read that covers several records of the same segment. */
export interface ReadGroup {
  segment: Segment;
  position: number;
  length: number;
  locations: RecordLocation[];
  /** The immutable READ_BLOCK-aligned block (position and length in the segment) that holds all of them. */
  block?: { position: number; length: number };
}

interface Placement {
  segment: Segment;
  position: number;
  buffer: Buffer;
}

interface Round<T> {
  batch: WriteRequest<T>[];
  /** where the round's data ends in each segment it wrote, in log order */
  written: Promise<SegmentEnd[]>;
}

interface SegmentEnd {
  segment: Segment;
  end: number;
}

interface WriteRequest<T> {
  placements: Placement[];
  payload: T;
  resolve: () => void;
  reject: (err: unknown) => void;
}


/**
 * Queue reads are planned per aligned block of this many bytes: the records of one block are one
 * read. A block wholly written is read whole and kept in a small cache (see BlockCache), so the
 * other queues whose records lie in it read it from memory.
 */
export const READ_BLOCK = 1024 * 1024;
/** Blocks the read cache keeps by default (128 MiB; see MessageStoreOptions.readCacheBlocks). */
const READ_CACHE_BLOCKS = 128;
/** A block is read whole (and cached) for a group that needs at least 1/this of it. */
const SPARSE_READ_RATIO = 16;
const FIRST_READ = 4096;
/**
 * Group-commit rounds on the disk at once. The device overlaps two O_DSYNC writes (measured: 1.5x
 * the writes a second of one at a time), so a round that arrives while one is on the disk need not
 * wait out its whole latency: transactions, whose half and end rounds are small and follow each
 * other, gain most.
 */
const ROUNDS_IN_FLIGHT = 2;
/** The write rate that pauses preallocation is measured over windows of this length. */
const RATE_WINDOW_MS = 250;

/**
 * The commit log: one append-only sequence of segments shared by all topics. Offsets are handed out
 * synchronously by `append` in call order. Group commit: what is queued when a round starts is
 * written by it (one writev per segment run); up to ROUNDS_IN_FLIGHT rounds are on the disk at
 * once, and a single writer loop answers them strictly in offset order, whichever lands first, so
 * the acknowledged records are always a prefix of the log. In sync mode the files are opened
 * O_DSYNC, so each writev is durable when it returns: one thread-pool round trip per round, not a
 * write and then an fdatasync. When a round is durable per flush mode, `onDurable` is called
 * synchronously with the payloads in log order, then the append promises resolve — so the
 * dispatcher runs before any producer is acknowledged. Between rounds the tail segment keeps
 * zero-filled space ahead of the data (see Segment), so that rounds overwrite in place instead of
 * growing the file; not while the log is written faster than `preallocateMaxRate`, where appending
 * costs less than zero-filling.
 */
export class CommitLog<T> {
  readonly stats: StoreStats = { appends: 0, records: 0, bytes: 0, writes: 0, fsyncs: 0 };
  private readonly options: CommitLogOptions;
  private readonly onDurable: (payloads: T[]) => void;
  private readonly segments: Segment[];
  private queue: WriteRequest<T>[] = [];
  /** rounds on the disk, oldest first: answered strictly in this order */
  private inFlight: Round<T>[] = [];
  private startQueued = false;
  private running = false;
  private idleWaiters: (() => void)[] = [];
  private readonly dirty = new Set<Segment>();
  private flushTimer: NodeJS.Timeout | undefined;
  private syncChain: Promise<void> = Promise.resolve();
  private pendingSyncs = 0;
  private failure: StorageError | undefined;
  private closed = false;
  private readonly recent: RecentRecords;
  private readonly blocks: BlockCache;
  /** bytes written since rateWindowStart, and the rate of the last window closed (bytes/s) */
  private rateWindowStart = 0;
  private rateWindowBytes = 0;
  private writeRate = 0;

  private readonly fileOptions: SegmentFileOptions;

  private constructor(options: CommitLogOptions, fileOptions: SegmentFileOptions, segments: Segment[], onDurable: (payloads: T[]) => void) {
    this.options = options;
    this.fileOptions = fileOptions;
    this.segments = segments;
    this.onDurable = onDurable;
    this.recent = new RecentRecords(options.recentCacheBytes ?? 0);
    this.blocks = new BlockCache(options.readCacheBlocks ?? READ_CACHE_BLOCKS);
  }

  static async open<T>(options: CommitLogOptions, onDurable: (payloads: T[]) => void): Promise<CommitLog<T>> {
    await mkdir(options.dir, { recursive: true });
    const starts = await listOffsetFiles(options.dir);
    const fileOptions = segmentFileOptions(options);
    const segments = await Promise.all(starts.map((s) => Segment.openExisting(options.dir, s, fileOptions)));
    return new CommitLog(options, fileOptions, segments, onDurable);
  }

  /** Starts the periodic fdatasync of async mode. Called once recovery is done. */
  startFlushing(): void {
    if (this.options.flush !== 'async' || this.flushTimer !== undefined) return;
    this.flushTimer = setInterval(() => {
      if (this.pendingSyncs > 0 || this.dirty.size === 0) return;
      this.sync().catch(() => undefined); // a failure is recorded in this.failure and surfaces on append
    }, this.options.flushIntervalMs);
    this.flushTimer.unref();
  }

  get segmentList(): readonly Segment[] {
    return this.segments;
  }

  get firstOffset(): number {
    return this.segments.length === 0 ? 0 : this.segments[0].start;
  }

  /** End of the bytes handed out so far (the next record goes here or into a new segment). */
  get endOffset(): number {
    const tail = this.segments.at(-1);
    return tail === undefined ? 0 : tail.start + tail.allocated;
  }

  get failed(): StorageError | undefined {
    return this.failure;
  }

  /**
   * Assigns physical offsets to `buffers` (contiguous unless a segment roll intervenes) and queues
   * them for the writer. `makePayload` receives the offsets and builds what `onDurable` will get.
   */
  append(buffers: Buffer[], makePayload: (offsets: number[]) => T): { offsets: number[]; durable: Promise<void> } {
    if (this.failure !== undefined) throw this.failure;
    if (this.closed) throw new StorageError('commit log is closed');
    const placements = this.place(buffers);
    const offsets = placements.map((p) => p.segment.start + p.position);
    const payload = makePayload(offsets);
    const durable = new Promise<void>((resolve, reject) => {
      this.queue.push({ placements, payload, resolve, reject });
    });
    this.stats.appends++;
    this.stats.records += buffers.length;
    if (!this.running) {
      this.running = true;
      // Deferred so every append issued in the same tick joins the first round.
      queueMicrotask(() => void this.writeLoop());
    } else if (this.inFlight.length < ROUNDS_IN_FLIGHT && !this.startQueued) {
      // A round is on the disk and there is room for another: start it once this tick's appends are in.
      this.startQueued = true;
      queueMicrotask(() => {
        this.startQueued = false;
        if (this.running) this.startRounds();
      });
    }
    return { offsets, durable };
  }

  private place(buffers: Buffer[]): Placement[] {
    const { segmentSize } = this.options;
    let total = 0;
    for (const b of buffers) {
      if (b.length > segmentSize) {
        throw new InvalidArgumentError(`record of ${b.length} bytes exceeds the segment size ${segmentSize}`);
      }
      total += b.length;
    }
    let segment = this.segments.at(-1);
    // Keep one call's records contiguous when they fit in a fresh segment.
    if (segment !== undefined && segment.allocated > 0 && segment.allocated + total > segmentSize && total <= segmentSize) {
      segment = this.roll();
    }
    const placements: Placement[] = [];
    for (const buffer of buffers) {
      if (segment === undefined || (segment.allocated > 0 && segment.allocated + buffer.length > segmentSize)) {
        segment = this.roll();
      }
      placements.push({ segment, position: segment.allocated, buffer });
      segment.allocated += buffer.length;
    }
    return placements;
  }

  private roll(): Segment {
    const tail = this.segments.at(-1);
    const start = tail === undefined ? 0 : Math.max(tail.start + this.options.segmentSize, tail.start + tail.allocated);
    const segment = Segment.createLazily(this.options.dir, start, this.fileOptions);
    this.segments.push(segment);
    return segment;
  }

  private async writeLoop(): Promise<void> {
    this.startRounds();
    while (this.inFlight.length > 0) {
      const { batch, written } = this.inFlight[0]!;
      let touched: SegmentEnd[] | undefined;
      try {
        touched = await written;
      } catch (cause) {
        this.failure ??= new StorageError('commit-log write failed; the store refuses further appends', { cause });
      }
      this.inFlight.shift();
      // The next round goes to the disk before this one is answered: its callers' continuations
      // (replies, dispatch, the next requests) run while the disk works, instead of the disk
      // waiting for them.
      this.startRounds();
      // After a failed round, a later one in flight may have landed past the hole it left: it is
      // refused too (recovery truncates at the hole), so what is acknowledged is a prefix of the log.
      if (touched === undefined || this.failure !== undefined) {
        for (const r of batch) r.reject(this.failure);
        continue;
      }
      // Every round before this one is on the file, so its data end is now the data end.
      for (const { segment, end } of touched) segment.markWritten(end);
      if (this.options.flush === 'async') {
        for (const { segment } of touched) this.dirty.add(segment);
      }
      this.remember(batch);
      this.onDurable(batch.map((r) => r.payload));
      for (const r of batch) r.resolve();
      // Only when nothing waits: under sustained load the zero-fill would double the bytes the
      // disk writes (measured: -8% produce throughput); a light load gets in-place writes.
      if (this.inFlight.length === 0 && this.queue.length === 0) this.preallocate();
    }
    this.running = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Starts rounds for what is queued while fewer than ROUNDS_IN_FLIGHT are on the disk. A round
   * that opens a segment waits until none is: it trims the segment before to its written end,
   * which must not race a write still landing there. After a failure, refuses what is queued.
   */
  private startRounds(): void {
    while (this.queue.length > 0 && this.inFlight.length < ROUNDS_IN_FLIGHT) {
      const batch = this.queue;
      if (this.failure !== undefined) {
        this.queue = [];
        for (const r of batch) r.reject(this.failure);
        return;
      }
      if (this.inFlight.length > 0 && opensSegment(batch)) return;
      this.queue = [];
      this.inFlight.push({ batch, written: this.writeBatch(batch) });
    }
  }

  /** Keeps a copy of the durable records just written (see RecentRecords). */
  private remember(batch: WriteRequest<T>[]): void {
    for (const request of batch) {
      for (const p of request.placements) this.recent.add(p.segment.start + p.position, p.buffer);
    }
  }

  private forgetRecent(): void {
    this.blocks.clear();
    this.recent.clear();
  }

  /** Keeps free space ahead of the tail segment's data (in the background, a step at a time). */
  private preallocate(): void {
    const ahead = this.options.preallocateBytes ?? 0;
    const tail = this.segments.at(-1);
    if (ahead <= 0 || tail === undefined || tail.written === 0) return;
    if (this.writeRate > (this.options.preallocateMaxRate ?? Infinity)) return;
    tail.preallocate(ahead, this.options.segmentSize, (err) =>
      this.options.onWarning?.('commit-log preallocation failed; appending without it', { file: tail.path, error: String(err) }),
    );
  }

  /**
   * One writev per run of contiguous placements in the same segment. Before the first write into
   * a new segment, the one before it is trimmed to its data: only the tail has free space. The
   * first write is issued synchronously (no await before it), so that it reaches the disk ahead
   * of the callers' continuations the last round queued (see writeLoop).
   */
  private async writeBatch(batch: WriteRequest<T>[]): Promise<SegmentEnd[]> {
    const touched: SegmentEnd[] = [];
    for (const run of runsOf(batch)) {
      if (run.segment.written === 0) {
        // The trim cuts at the data end, which must count this round's bytes before the roll. A
        // round that opens a segment is alone on the disk (startRounds), so they are the data end.
        for (const { segment, end } of touched) segment.markWritten(end);
        await this.trimBefore(run.segment);
      }
      const written = await run.segment.writev(run.buffers, run.start);
      this.stats.bytes += written;
      this.noteWritten(written);
      this.stats.writes++;
      if (this.fileOptions.durableWrites) this.stats.fsyncs++;
      const last = touched.at(-1);
      if (last?.segment === run.segment) last.end = run.start + written;
      else touched.push({ segment: run.segment, end: run.start + written });
    }
    return touched;
  }

  /** Closes the rate window once it is RATE_WINDOW_MS old; an idle stretch counts as a slow window. */
  private noteWritten(bytes: number): void {
    const now = performance.now();
    const elapsed = now - this.rateWindowStart;
    if (elapsed >= RATE_WINDOW_MS) {
      this.writeRate = (this.rateWindowBytes * 1000) / elapsed;
      this.rateWindowStart = now;
      this.rateWindowBytes = 0;
    }
    this.rateWindowBytes += bytes;
  }

  private async trimBefore(segment: Segment): Promise<void> {
    const index = this.segments.indexOf(segment);
    if (index > 0) await this.segments[index - 1]!.trim();
  }

  /** Resolves when every append queued so far has been written (or failed). */
  drain(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * fdatasyncs every segment written before this call and not synced since (async mode; sync mode
   * leaves nothing dirty). Serialised, so a sync already running cannot stand in for this one.
   */
  sync(): Promise<void> {
    this.pendingSyncs++;
    const run = this.syncChain
      .catch(() => undefined)
      .then(() => this.syncDirty())
      .finally(() => {
        this.pendingSyncs--;
      });
    this.syncChain = run;
    return run;
  }

  private async syncDirty(): Promise<void> {
    const segments = [...this.dirty];
    this.dirty.clear();
    try {
      for (const segment of segments) {
        await segment.datasync();
        this.stats.fsyncs++;
      }
    } catch (cause) {
      this.failure ??= new StorageError('commit-log fdatasync failed; the store refuses further appends', { cause });
      throw this.failure;
    }
  }

  segmentFor(offset: number): Segment | undefined {
    let lo = 0;
    let hi = this.segments.length - 1;
    let found: Segment | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.segments[mid].start <= offset) {
        found = this.segments[mid];
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  private locate(offset: number, minLength: number): { segment: Segment; position: number } {
    const segment = this.segmentFor(offset);
    const position = segment === undefined ? -1 : offset - segment.start;
    if (segment === undefined || position + minLength > segment.written) {
      throw new InvalidArgumentError(`no written record at physical offset ${offset}`, { context: { physicalOffset: offset } });
    }
    return { segment, position };
  }

  async readAt(offset: number): Promise<StoredRecord> {
    const { segment, position } = this.locate(offset, MIN_RECORD_SIZE);
    const cached = this.recent.get(offset);
    // Encoded by this process and never read back from disk: its checksum cannot be wrong.
    if (cached !== undefined) return decodeRecord(cached, offset, 0, false, false);
    const first = await segment.read(position, Math.min(FIRST_READ, segment.written - position));
    const size = first.readUInt32LE(0);
    if (size <= first.length) return decodeRecord(first, offset, 0, size < first.length);
    if (size < MIN_RECORD_SIZE || position + size > segment.written) {
      throw new CorruptDataError(`commit-log record at ${offset}: bad size ${size}`, { context: { physicalOffset: offset } });
    }
    const rest = await segment.read(position + first.length, size - first.length);
    return decodeRecord(Buffer.concat([first, rest], size), offset);
  }

  /** The store timestamp of the record at `offset`, read from its header alone. */
  async readStoreTimestamp(offset: number): Promise<number> {
    const { segment, position } = this.locate(offset, MIN_RECORD_SIZE);
    const header = await segment.read(position + STORE_TIMESTAMP_AT, 8);
    return u64(header, 0);
  }

  /**
   * Groups locations (ascending) by the READ_BLOCK-aligned block of their segment they lie in; a
   * record across a block edge is a group of its own.
   */
  planReads(locations: RecordLocation[]): ReadGroup[] {
    const groups: ReadGroup[] = [];
    let current: ReadGroup | undefined;
    let joinable = 0; // the log offset a record must end by to join `current`
    for (const loc of locations) {
      const end = loc.offset + loc.size;
      if (current !== undefined && loc.offset >= current.segment.start + current.position && end <= joinable) {
        current.length = Math.max(current.length, end - (current.segment.start + current.position));
        current.locations.push(loc);
        continue;
      }
      const { segment, position } = this.locate(loc.offset, loc.size);
      const blockStart = position - (position % READ_BLOCK);
      joinable = segment.start + Math.min(blockStart + READ_BLOCK, segment.written);
      current = { segment, position, length: loc.size, locations: [loc] };
      if (end > joinable) {
        joinable = 0; // across the block edge: alone, read exactly
      } else if (blockStart + READ_BLOCK <= segment.written) {
        // Wholly written, so it can no longer change and may be cached. A part block (the tail's,
        // or a segment's last) is read exactly: more may still be written into it.
        current.block = { position: blockStart, length: READ_BLOCK };
      }
      groups.push(current);
    }
    return groups;
  }

  /**
   * Copies the group's records, as stored and back to back, into `out` from `at` (room for the sum
   * of the locations' sizes): from the recent-record ring when it still holds them all, else from
   * the group's block or range. Only each record's size is checked here, against its queue entry;
   * whoever decodes the bytes checks them (decodeRecord, or the consumer of a PULL reply). Nothing
   * read from a file escapes, so a block's memory can be reused once it is evicted.
   */
  async copyGroup(group: ReadGroup, out: Buffer, at: number): Promise<void> {
    let pos = at;
    let fromRing = true;
    for (const loc of group.locations) {
      if (!this.recent.copyTo(loc.offset, loc.size, out, pos)) {
        fromRing = false;
        break;
      }
      pos += loc.size;
    }
    if (fromRing) return;
    const { segment, block } = group;
    if (block === undefined && (await this.copyAcrossBlocks(group, out, at))) return;
    if (block !== undefined) {
      const start = segment.start + block.position;
      let needed = 0;
      for (const loc of group.locations) needed += loc.size;
      if (this.blocks.has(start) || needed * SPARSE_READ_RATIO >= block.length) {
        const { bytes, release } = this.blocks.acquire(start, (spare) => segment.read(block.position, block.length, spare));
        try {
          copyRecords(group.locations, await bytes, start, out, at);
        } finally {
          release();
        }
        return;
      }
    }
    copyRecords(group.locations, await segment.read(group.position, group.length), segment.start + group.position, out, at);
  }

  /**
   * Copies every group of one planned read into `out`, back to back in location order. Block
   * groups go first, so that a lone record across a block edge finds both its blocks cached.
   */
  async copyAll(groups: ReadGroup[], out: Buffer): Promise<void> {
    const starts: number[] = new Array(groups.length);
    let at = 0;
    for (let i = 0; i < groups.length; i++) {
      starts[i] = at;
      for (const loc of groups[i]!.locations) at += loc.size;
    }
    for (let i = 0; i < groups.length; i++) if (groups[i]!.block !== undefined) await this.copyGroup(groups[i]!, out, starts[i]!);
    for (let i = 0; i < groups.length; i++) if (groups[i]!.block === undefined) await this.copyGroup(groups[i]!, out, starts[i]!);
  }

  /**
   * A lone record across a block edge, copied from the two cached blocks it lies in when both are
   * (a drain reads the blocks around it whole), rather than read again: one such record per block
   * was about 40% of a drain's file reads, each a thread-pool hand-off. False when either is not
   * cached (or not wholly written), or its load failed: the caller reads the record itself.
   */
  private async copyAcrossBlocks(group: ReadGroup, out: Buffer, at: number): Promise<boolean> {
    if (group.locations.length !== 1) return false;
    const { segment, position, length } = group;
    const first = position - (position % READ_BLOCK);
    const second = first + READ_BLOCK;
    if (position + length <= second || second + READ_BLOCK > segment.written) return false;
    if (!this.blocks.has(segment.start + first) || !this.blocks.has(segment.start + second)) return false;
    // Both are cached (or loading): acquire never calls this.
    const unused = (): Promise<Buffer> => Promise.reject(new StorageError('read cache: block to load after has()'));
    const one = this.blocks.acquire(segment.start + first, unused);
    const two = this.blocks.acquire(segment.start + second, unused);
    try {
      const [x, y] = await Promise.all([one.bytes, two.bytes]);
      const head = second - position;
      x.copy(out, at, position - first, READ_BLOCK);
      y.copy(out, at + head, 0, length - head);
      return true;
    } catch {
      return false;
    } finally {
      one.release();
      two.release();
    }
  }

  /**
   * Recovery only: cuts the log at `offset` (inside or at the end of an existing segment) and
   * deletes every later segment. Returns the number of bytes removed.
   */
  async truncateAt(offset: number): Promise<{ removed: number; file: string }> {
    const segment = this.segmentFor(offset);
    if (segment === undefined) throw new StorageError(`cannot truncate the commit log at ${offset}: no segment`);
    this.forgetRecent();
    // Later segments go first (newest first): a crash half-way must never leave a gap in the log
    // followed by data that a later scan would accept.
    let removed = 0;
    const index = this.segments.indexOf(segment);
    for (const later of this.segments.splice(index + 1).reverse()) {
      removed += later.written;
      await later.remove();
    }
    await fsyncDir(this.options.dir);
    removed += await segment.truncate(offset - segment.start);
    return { removed, file: segment.path };
  }

  /** Waits for queued writes, syncs what is dirty, closes every file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer !== undefined) clearInterval(this.flushTimer);
    await this.drain();
    if (this.failure === undefined) await this.sync();
    await Promise.all(this.segments.map((s) => s.close()));
  }
}

function segmentFileOptions(options: CommitLogOptions): SegmentFileOptions {
  return { durableWrites: options.flush === 'sync' };
}

export function commitLogDir(dataDir: string): string {
  return join(dataDir, 'commitlog');
}

/** Copies `locations` out of `buf` (which holds the log from offset `base`) into `out` from `at`. */
function copyRecords(locations: RecordLocation[], buf: Buffer, base: number, out: Buffer, at: number): void {
  for (const loc of locations) {
    const from = loc.offset - base;
    if (from < 0 || from + loc.size > buf.length || u32(buf, from) !== loc.size) {
      throw new CorruptDataError(`commit-log record at ${loc.offset} does not match its queue entry`, {
        context: { physicalOffset: loc.offset, expectedSize: loc.size },
      });
    }
    buf.copy(out, at, from, from + loc.size);
    at += loc.size;
  }
}

/**
 * Whether a batch writes into a segment with no data yet (its first write trims the one before).
 * Placements are in log order and a new segment only ever follows, so the last one tells.
 */
function opensSegment<T>(batch: WriteRequest<T>[]): boolean {
  for (let i = batch.length - 1; i >= 0; i--) {
    const last = batch[i]!.placements.at(-1);
    if (last !== undefined) return last.segment.written === 0;
  }
  return false;
}

/** The placements of a batch as runs of contiguous bytes in one segment, in log order. */
function runsOf<T>(batch: WriteRequest<T>[]): { segment: Segment; start: number; buffers: Buffer[] }[] {
  const runs: { segment: Segment; start: number; buffers: Buffer[] }[] = [];
  let last: { segment: Segment; start: number; buffers: Buffer[] } | undefined;
  let lastEnd = 0;
  for (const request of batch) {
    for (const p of request.placements) {
      if (last === undefined || p.segment !== last.segment || p.position !== lastEnd) {
        last = { segment: p.segment, start: p.position, buffers: [] };
        runs.push(last);
        lastEnd = p.position;
      }
      last.buffers.push(p.buffer);
      lastEnd += p.buffer.length;
    }
  }
  return runs;
}
