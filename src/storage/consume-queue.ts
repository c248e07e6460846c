import { constants } from 'node:fs';
import { mkdir, open, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CorruptDataError } from '../common/errors.js';
import { BlockCache } from './block-cache.js';
import { fsyncDir, listOffsetFiles, offsetFileName } from './fs-util.js';
import { putU32, u64 } from '../common/le.js';

/**
 * Consume queue of one topic/queue: fixed 20-byte entries, little-endian.
 *
 * off  size  field
 * 0    8     commit-log physical offset (u32 lo, u32 hi)
 * 8    4     record size (u32; 0 never occurs in a written entry, so a zero-filled entry is a hole)
 * 12   8     tag hash (low u32 = tagHash(tag) from common/tags, high u32 = 0)
 *
 * Entry i lives at byte (i % entriesPerFile) * 20 of the file `<dir>/<20-digit first index>`, where
 * the first index is i - i % entriesPerFile. Files are written behind the dispatcher (not synced per
 * entry): dispatched entries wait in an in-memory buffer that reads consult, and `sync()` (called by
 * the checkpoint) writes and fsyncs them. Anything not covered by a checkpoint is rebuilt from the log.
 */
export const CQ_ENTRY_SIZE = 20;
export const CQ_TAG_HASH_AT = 12;
const SCAN_CHUNK_ENTRIES = 4096;
/**
 * Entries written to a file are read back in blocks of this many, and a few blocks per queue are
 * kept: a consumer draining a backlog pulls a few hundred entries at a time, and a file read per
 * pull cost as much broker time as reading the records themselves.
 */
const READ_BLOCK_ENTRIES = 4096;
const CACHED_BLOCKS = 2;
const FILE_FLAGS = constants.O_RDWR | constants.O_CREAT;

export type PutOutcome = 'added' | 'duplicate' | 'gap';

export class ConsumeQueue {
  readonly topic: string;
  readonly queueId: number;
  private readonly dir: string;
  private readonly perFile: number;
  /** Visible entries are [minOffset, maxOffset). */
  minOffset = 0;
  maxOffset = 0;
  /** Entries [pendingStart, maxOffset) are not yet written to their file; they live here. */
  private pending = Buffer.alloc(0);
  private pendingStart = 0;
  private readonly files = new Map<number, Promise<FileHandle>>();
  /** blocks of written (immutable) entries, by their first entry's index */
  private readonly blocks = new BlockCache(CACHED_BLOCKS);
  private readonly unsynced = new Set<number>();
  private dirChanged = false;
  private createdDir: string | undefined;
  private writeChain: Promise<void> = Promise.resolve();

  constructor(root: string, topic: string, queueId: number, perFile: number) {
    this.topic = topic;
    this.queueId = queueId;
    this.perFile = perFile;
    this.dir = join(root, topic, String(queueId));
  }

  /**
   * Opens an existing queue and repairs its tail: trailing entries that are zero-filled or point at
   * physical offsets >= `trimAt` (not covered by the checkpoint) are dropped, to be re-dispatched.
   */
  static async load(root: string, topic: string, queueId: number, perFile: number, trimAt: number): Promise<ConsumeQueue> {
    const cq = new ConsumeQueue(root, topic, queueId, perFile);
    const starts = await listOffsetFiles(cq.dir);
    while (starts.length > 0) {
      const fileStart = starts[starts.length - 1];
      const path = join(cq.dir, offsetFileName(fileStart));
      const { size } = await stat(path);
      const keep = await scanBack(path, Math.min(Math.floor(size / CQ_ENTRY_SIZE), perFile), trimAt);
      if (keep === 0) {
        await unlink(path);
        cq.dirChanged = true;
        starts.pop();
        continue;
      }
      if (keep * CQ_ENTRY_SIZE !== size) {
        await truncate(path, keep * CQ_ENTRY_SIZE);
        cq.unsynced.add(fileStart);
      }
      cq.maxOffset = fileStart + keep;
      break;
    }
    cq.minOffset = starts.length === 0 ? cq.maxOffset : await firstEntry(join(cq.dir, offsetFileName(starts[0])), starts[0]);
    cq.pendingStart = cq.maxOffset;
    return cq;
  }

  /** Makes an empty queue start at `offset` (a log whose early segments were deleted). */
  resetBase(offset: number): void {
    if (this.maxOffset !== this.minOffset || this.files.size > 0) throw new Error('resetBase on a non-empty queue');
    this.minOffset = this.maxOffset = this.pendingStart = offset;
  }

  /** Adds entry `queueOffset`; idempotent for an existing offset, refuses to leave a hole. */
  put(queueOffset: number, physicalOffset: number, size: number, tagHash: number): PutOutcome {
    if (queueOffset < this.maxOffset) return 'duplicate';
    if (queueOffset > this.maxOffset) return 'gap';
    const used = (this.maxOffset - this.pendingStart) * CQ_ENTRY_SIZE;
    if (used + CQ_ENTRY_SIZE > this.pending.length) {
      const grown = Buffer.allocUnsafe(Math.max(1024 * CQ_ENTRY_SIZE, this.pending.length * 2));
      this.pending.copy(grown, 0, 0, used);
      this.pending = grown;
    }
    const buf = this.pending;
    putU32(buf, used, physicalOffset >>> 0);
    putU32(buf, used + 4, Math.floor(physicalOffset / 0x1_0000_0000));
    putU32(buf, used + 8, size);
    putU32(buf, used + 12, tagHash >>> 0);
    putU32(buf, used + 16, 0);
    this.maxOffset++;
    return 'added';
  }

  /** Entries [from, from + count) as one buffer; the caller keeps the range within visible entries. */
  async readEntries(from: number, count: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(count * CQ_ENTRY_SIZE);
    const end = from + count;
    // Copy the in-memory part now: it may be written out and dropped while the file reads run.
    const memStart = Math.max(from, this.pendingStart);
    if (memStart < end) {
      this.pending.copy(out, (memStart - from) * CQ_ENTRY_SIZE, (memStart - this.pendingStart) * CQ_ENTRY_SIZE, (end - this.pendingStart) * CQ_ENTRY_SIZE);
    }
    const fileEnd = Math.min(end, memStart);
    for (let i = from; i < fileEnd; ) {
      const fileStart = i - (i % this.perFile);
      const blockStart = i - ((i - fileStart) % READ_BLOCK_ENTRIES);
      const blockEnd = Math.min(blockStart + READ_BLOCK_ENTRIES, fileStart + this.perFile);
      const n = Math.min(blockEnd, fileEnd) - i;
      const target = (i - from) * CQ_ENTRY_SIZE;
      if (blockEnd <= memStart) {
        // The whole block is in its file and can no longer change.
        const block = await this.blocks.get(blockStart, () => this.readFile(blockStart, Buffer.allocUnsafe((blockEnd - blockStart) * CQ_ENTRY_SIZE)));
        block.copy(out, target, (i - blockStart) * CQ_ENTRY_SIZE, (i - blockStart + n) * CQ_ENTRY_SIZE);
      } else {
        await this.readFile(i, out.subarray(target, target + n * CQ_ENTRY_SIZE));
      }
      i += n;
    }
    return out;
  }

  /** Fills `into` with the entries from `first` on, all in one file. */
  private async readFile(first: number, into: Buffer): Promise<Buffer> {
    const inFile = first % this.perFile;
    const handle = await this.file(first - inFile);
    let done = 0;
    while (done < into.length) {
      const { bytesRead } = await handle.read(into, done, into.length - done, inFile * CQ_ENTRY_SIZE + done);
      if (bytesRead === 0) {
        throw new CorruptDataError(`consume queue ${this.topic}/${this.queueId} is shorter than its entries`, {
          context: { topic: this.topic, queueId: this.queueId, offset: first },
        });
      }
      done += bytesRead;
    }
    return into;
  }

  private file(fileStart: number): Promise<FileHandle> {
    let handle = this.files.get(fileStart);
    if (handle === undefined) {
      handle = this.openFile(fileStart);
      this.files.set(fileStart, handle);
    }
    return handle;
  }

  private async openFile(fileStart: number): Promise<FileHandle> {
    const created = await mkdir(this.dir, { recursive: true });
    if (created !== undefined) this.createdDir = created;
    const path = join(this.dir, offsetFileName(fileStart));
    const existed = await stat(path).then(
      () => true,
      () => false,
    );
    if (!existed) this.dirChanged = true;
    return open(path, FILE_FLAGS);
  }

  /** Writes the in-memory entries to their files (no fsync). Serialised. */
  writePending(): Promise<void> {
    const run = this.writeChain.then(() => this.writeOut());
    this.writeChain = run.catch(() => undefined);
    return run;
  }

  private async writeOut(): Promise<void> {
    const first = this.pendingStart;
    const count = this.maxOffset - first;
    if (count === 0) return;
    // put() only appends past this range or copies it into a grown buffer, so the view stays valid.
    const bytes = this.pending.subarray(0, count * CQ_ENTRY_SIZE);
    for (let i = first; i < first + count; ) {
      const inFile = i % this.perFile;
      const n = Math.min(this.perFile - inFile, first + count - i);
      const fileStart = i - inFile;
      const handle = await this.file(fileStart);
      let done = 0;
      const length = n * CQ_ENTRY_SIZE;
      const source = (i - first) * CQ_ENTRY_SIZE;
      while (done < length) {
        const { bytesWritten } = await handle.write(bytes, source + done, length - done, inFile * CQ_ENTRY_SIZE + done);
        done += bytesWritten;
      }
      this.unsynced.add(fileStart);
      i += n;
    }
    const rest = (this.maxOffset - first - count) * CQ_ENTRY_SIZE;
    this.pending.copyWithin(0, count * CQ_ENTRY_SIZE, count * CQ_ENTRY_SIZE + rest);
    this.pendingStart = first + count;
  }

  /** Writes pending entries and fsyncs every file (and directory) changed since the last sync. */
  async sync(): Promise<void> {
    await this.writePending();
    const files = [...this.unsynced];
    this.unsynced.clear();
    for (const fileStart of files) await (await this.file(fileStart)).sync();
    if (this.dirChanged || this.createdDir !== undefined) {
      const createdDir = this.createdDir;
      this.dirChanged = false;
      this.createdDir = undefined;
      await fsyncDir(this.dir);
      if (createdDir !== undefined) {
        // mkdir -p created `createdDir` and everything below it: each parent must record its child.
        const top = dirname(createdDir);
        for (let d = dirname(this.dir); ; d = dirname(d)) {
          await fsyncDir(d);
          if (d === top || d === dirname(d)) break;
        }
      }
    }
  }

  async close(): Promise<void> {
    await this.writeChain;
    const handles = [...this.files.values()];
    this.files.clear();
    for (const h of handles) await (await h).close();
  }
}

/** Number of entries to keep in a file of `count` entries: up to the last sane one below `trimAt`. */
async function scanBack(path: string, count: number, trimAt: number): Promise<number> {
  const handle = await open(path, 'r');
  try {
    let end = count;
    while (end > 0) {
      const start = Math.max(0, end - SCAN_CHUNK_ENTRIES);
      const buf = Buffer.alloc((end - start) * CQ_ENTRY_SIZE);
      await handle.read(buf, 0, buf.length, start * CQ_ENTRY_SIZE);
      for (let i = end - start - 1; i >= 0; i--) {
        const at = i * CQ_ENTRY_SIZE;
        if (buf.readUInt32LE(at + 8) !== 0 && u64(buf, at) < trimAt) return start + i + 1;
      }
      end = start;
    }
    return 0;
  } finally {
    await handle.close();
  }
}

/** Index of the first non-hole entry of the first file (a queue whose head was deleted starts later). */
async function firstEntry(path: string, fileStart: number): Promise<number> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(SCAN_CHUNK_ENTRIES * CQ_ENTRY_SIZE);
    for (let index = 0; ; index += SCAN_CHUNK_ENTRIES) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, index * CQ_ENTRY_SIZE);
      const n = Math.floor(bytesRead / CQ_ENTRY_SIZE);
      for (let i = 0; i < n; i++) if (buf.readUInt32LE(i * CQ_ENTRY_SIZE + 8) !== 0) return fileStart + index + i;
      if (n < SCAN_CHUNK_ENTRIES) return fileStart + index + n;
    }
  } finally {
    await handle.close();
  }
}
