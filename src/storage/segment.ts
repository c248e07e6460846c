import { constants } from 'node:fs';
import { open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../common/errors.js';
import { fsyncDir, offsetFileName } from './fs-util.js';

export interface SegmentFileOptions {
  /**
   * Open with O_DSYNC: every write is durable when it returns, so sync-flush rounds need no
   * separate fdatasync (one thread-pool round trip instead of two).
   */
  durableWrites: boolean;
}

/**
 * Free space is zero-filled in pieces of this size, one at a time: a data write queued behind one
 * waits for 256 KiB to reach the disk, not for megabytes.
 */
const ZERO_PIECE = 256 * 1024;
/** One background preallocation adds at most this much, so a write that catches up waits briefly. */
const PREALLOCATE_STEP = 1024 * 1024;
let zeros: Buffer | undefined;

/**
 * One commit-log file, named by its start physical offset (20 digits). Writes go through `writev`
 * at explicit positions; the CommitLog's single writer loop is the only writer of data.
 *
 * Preallocation: the file may extend past the data with zero bytes that are already written and
 * synced (`capacity`). A write into that space changes no file size and allocates no block, so its
 * O_DSYNC/fdatasync flushes only the data (measured: 1 KiB 0.22 ms instead of 0.32 ms appended).
 * Recovery treats an all-zero tail as free space and anything else after the last valid record as
 * a torn write, cut off; a segment that is no longer the tail is trimmed to its data (`trim`), so
 * only the last segment ever has free space.
 */
export class Segment {
  readonly start: number;
  readonly path: string;
  private readonly dir: string;
  private readonly options: SegmentFileOptions;
  /** Bytes handed out by the allocator (>= written). */
  allocated: number;
  /**
   * The end of the data: every byte below it is on the file (written, maybe not yet synced). The
   * CommitLog moves it (`markWritten`) in log order, so a later write landing first, while an
   * earlier one is still on the disk, does not move it past a gap.
   */
  written: number;
  /** File length: the data plus zero-filled free space. */
  capacity: number;
  private preallocation: Promise<void> | undefined;
  /** set after a failed preallocation (disk full, say): plain appends from then on */
  private preallocationFailed = false;
  private handle: Promise<FileHandle> | undefined;
  /** the handle once open: a write then starts without an await (see CommitLog.writeBatch) */
  private opened: FileHandle | undefined;
  private readonly isNew: boolean;
  private closed = false;

  private constructor(dir: string, start: number, size: number, isNew: boolean, options: SegmentFileOptions) {
    this.dir = dir;
    this.start = start;
    this.path = join(dir, offsetFileName(start));
    this.allocated = size;
    this.written = size;
    this.capacity = size;
    this.isNew = isNew;
    this.options = options;
  }

  /** An existing file; until recovery says where its data ends, all of it counts as written. */
  static async openExisting(dir: string, start: number, options: SegmentFileOptions): Promise<Segment> {
    const segment = new Segment(dir, start, 0, false, options);
    const { size } = await stat(segment.path);
    segment.allocated = size;
    segment.written = size;
    segment.capacity = size;
    return segment;
  }

  /** A segment whose file is created (and its directory entry synced) on first use. */
  static createLazily(dir: string, start: number, options: SegmentFileOptions): Segment {
    return new Segment(dir, start, 0, true, options);
  }

  get end(): number {
    return this.start + this.written;
  }

  private fileHandle(): Promise<FileHandle> {
    if (this.closed) return Promise.reject(new StorageError('segment is closed', { context: { path: this.path } }));
    this.handle ??= this.openFile().then((handle) => (this.opened = handle));
    return this.handle;
  }

  private async openFile(): Promise<FileHandle> {
    const dsync = this.options.durableWrites ? constants.O_DSYNC : 0;
    if (!this.isNew) return open(this.path, constants.O_RDWR | dsync);
    const handle = await open(this.path, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | dsync);
    await fsyncDir(this.dir);
    return handle;
  }

  /**
   * Writes all buffers contiguously at `position`, retrying short writes. Waits for a
   * preallocation that covers the range first, so zeros never land on data. Leaves `written` to
   * the caller (`markWritten`), which knows when the bytes before these are on the file too.
   */
  async writev(buffers: Buffer[], position: number): Promise<number> {
    const handle = this.opened ?? (await this.fileHandle());
    let total = 0;
    for (const b of buffers) total += b.length;
    if (this.preallocation !== undefined && position + total > this.capacity) await this.preallocation;
    let done = 0;
    let pending = buffers;
    while (done < total) {
      const { bytesWritten } = await handle.writev(pending, position + done);
      if (bytesWritten <= 0) throw new StorageError('commit-log write made no progress', { context: { path: this.path } });
      done += bytesWritten;
      if (done < total) pending = skipBytes(buffers, done);
    }
    if (position + total > this.capacity) this.capacity = position + total;
    return total;
  }

  /** The bytes below `end` are all on the file (see `written`). */
  markWritten(end: number): void {
    if (end > this.written) this.written = end;
  }

  async datasync(): Promise<void> {
    const handle = await this.fileHandle();
    await handle.datasync();
  }

  /**
   * Keeps about `ahead` bytes of zero-filled, synced free space after the data (never past
   * `limit`), adding up to 1 MiB in the background whenever it is short. At most one runs at a
   * time; `writev` waits for it when the data catches up. A failure is reported by `onError`
   * and leaves appends working as plain appends.
   */
  preallocate(ahead: number, limit: number, onError: (err: unknown) => void): void {
    if (this.preallocation !== undefined || this.preallocationFailed || this.closed || ahead <= 0) return;
    if (this.capacity - this.written >= ahead) return;
    const from = this.capacity;
    const length = Math.min(PREALLOCATE_STEP, ahead, limit - from);
    if (length <= 0) return;
    this.preallocation = (async () => {
      const handle = await this.fileHandle();
      let done = 0;
      zeros ??= Buffer.alloc(ZERO_PIECE);
      while (done < length) {
        const piece = zeros.subarray(0, Math.min(ZERO_PIECE, length - done));
        const { bytesWritten } = await handle.writev([piece], from + done);
        if (bytesWritten <= 0) throw new StorageError('preallocation made no progress', { context: { path: this.path } });
        done += bytesWritten;
      }
      if (!this.options.durableWrites) await handle.datasync();
      this.capacity = Math.max(this.capacity, from + length);
    })()
      .catch((err: unknown) => {
        this.preallocationFailed = true;
        onError(err);
      })
      .finally(() => {
        this.preallocation = undefined;
      });
  }

  /** Waits for a running preallocation (before trimming or closing). */
  async settle(): Promise<void> {
    await this.preallocation;
  }

  /**
   * This segment stopped being the tail: cut its free space so that the data ends where the file
   * does, and sync that before any later segment is written.
   */
  async trim(): Promise<void> {
    await this.settle();
    if (this.capacity === this.written) return;
    const handle = await this.fileHandle();
    await handle.truncate(this.written);
    await handle.datasync();
    this.capacity = this.written;
  }

  /** Recovery: the data ends at `length`, and the rest of the file is zeros (free space). */
  setDataEnd(length: number): void {
    this.written = length;
    this.allocated = length;
  }

  /**
   * Reads exactly `length` bytes at `position` (fewer only at end of file), into `into` when it is
   * large enough (a recycled block; see BlockCache.acquire), else into a new buffer.
   */
  async read(position: number, length: number, into?: Buffer): Promise<Buffer> {
    const handle = await this.fileHandle();
    const buf = into !== undefined && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(buf, done, length - done, position + done);
      if (bytesRead === 0) return buf.subarray(0, done);
      done += bytesRead;
    }
    return buf;
  }

  /** Cuts the file to `length` bytes and syncs it; returns the number of bytes removed. */
  async truncate(length: number): Promise<number> {
    await this.settle();
    const handle = await this.fileHandle();
    const removed = this.capacity - length;
    await handle.truncate(length);
    await handle.datasync();
    this.written = length;
    this.allocated = length;
    this.capacity = length;
    return removed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.settle();
    this.closed = true;
    const handle = this.handle;
    this.handle = undefined;
    this.opened = undefined;
    if (handle !== undefined) await (await handle).close();
  }

  /** Closes and removes the file. */
  async remove(): Promise<void> {
    await this.close();
    await unlink(this.path);
  }
}

function skipBytes(buffers: Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  let left = skip;
  for (const b of buffers) {
    if (left >= b.length) {
      left -= b.length;
      continue;
    }
    out.push(left > 0 ? b.subarray(left) : b);
    left = 0;
  }
  return out;
}
