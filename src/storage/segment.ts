import { constants } from 'node:fs';
import { open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../common/errors.js';
import { fsyncDir, offsetFileName } from './fs-util.js';

/**
 * One commit-log file, named by its start physical offset (20 digits). Its length is exactly the
 * bytes written (no preallocation), so the end of the file is the end of the data. All writes go
 * through `writev` at explicit positions; the CommitLog's single writer loop is the only caller, so
 * a later change to preallocate touches this file and the writer only.
 */
export class Segment {
  readonly start: number;
  readonly path: string;
  private readonly dir: string;
  /** Bytes handed out by the allocator (>= written). */
  allocated: number;
  /** Bytes known to be on the file (written, maybe not yet synced). */
  written: number;
  private handle: Promise<FileHandle> | undefined;
  private readonly isNew: boolean;
  private closed = false;

  private constructor(dir: string, start: number, size: number, isNew: boolean) {
    this.dir = dir;
    this.start = start;
    this.path = join(dir, offsetFileName(start));
    this.allocated = size;
    this.written = size;
    this.isNew = isNew;
  }

  static async openExisting(dir: string, start: number): Promise<Segment> {
    const segment = new Segment(dir, start, 0, false);
    const { size } = await stat(segment.path);
    segment.allocated = size;
    segment.written = size;
    return segment;
  }

  /** A segment whose file is created (and its directory entry synced) on first use. */
  static createLazily(dir: string, start: number): Segment {
    return new Segment(dir, start, 0, true);
  }

  get end(): number {
    return this.start + this.written;
  }

  private fileHandle(): Promise<FileHandle> {
    if (this.closed) return Promise.reject(new StorageError('segment is closed', { context: { path: this.path } }));
    this.handle ??= this.openFile();
    return this.handle;
  }

  private async openFile(): Promise<FileHandle> {
    if (!this.isNew) return open(this.path, 'r+');
    const handle = await open(this.path, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC);
    await fsyncDir(this.dir);
    return handle;
  }

  /** Writes all buffers contiguously at `position`, retrying short writes. */
  async writev(buffers: Buffer[], position: number): Promise<number> {
    const handle = await this.fileHandle();
    let total = 0;
    for (const b of buffers) total += b.length;
    let done = 0;
    let pending = buffers;
    while (done < total) {
      const { bytesWritten } = await handle.writev(pending, position + done);
      if (bytesWritten <= 0) throw new StorageError('commit-log write made no progress', { context: { path: this.path } });
      done += bytesWritten;
      if (done < total) pending = skipBytes(buffers, done);
    }
    if (position + total > this.written) this.written = position + total;
    return total;
  }

  async datasync(): Promise<void> {
    const handle = await this.fileHandle();
    await handle.datasync();
  }

  /** Reads exactly `length` bytes at `position` (fewer only at end of file). */
  async read(position: number, length: number): Promise<Buffer> {
    const handle = await this.fileHandle();
    const buf = Buffer.allocUnsafe(length);
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
    const handle = await this.fileHandle();
    const removed = this.written - length;
    await handle.truncate(length);
    await handle.datasync();
    this.written = length;
    this.allocated = length;
    return removed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const handle = this.handle;
    this.handle = undefined;
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
