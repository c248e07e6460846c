import { constants } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, isErrno, listOffsetFiles, offsetFileName } from './fs-util.js';

/**
 * An append-only hash index on disk: string keys → numbers (commit-log offsets), many values per
 * key, in the manner of RocketMQ's IndexFile. It stores 32-bit key hashes, not keys, so a lookup
 * returns candidates and the caller confirms each against the record it points to (a collision or
 * a stale entry costs a read, never a wrong answer).
 *
 * Files in `dir`, named by the ordinal of their first entry (20 digits, like log segments):
 *
 *   <n>        entries, 16 bytes each, little-endian:
 *                0  u32  key hash
 *                4  u32  1 + index in this file of the previous entry in the same slot (0 = none)
 *                8  f64  value
 *   <n>.slots  written when the file is full (sealed): u32 × slotCount, 1 + index of the newest
 *              entry of each slot (0 = empty), then u32 magic and u32 entry count.
 *
 * The file being filled is also held in memory (typed arrays, 16 bytes an entry), where lookups
 * walk it; sealed files are walked with small reads. Adding an entry is a hash and three array
 * stores, and entries reach the file in one write per flush: at tens of thousands of messages a
 * second this replaced level, whose per-entry cost was a fifth of the broker's send path.
 *
 * Derived data: `sync` makes everything added so far durable, and a torn or partial tail after a
 * crash is cut back to whole entries; the owner re-adds what its source holds past its last sync.
 */
export const HASH_INDEX_ENTRY_BYTES = 16;
const SLOTS_MAGIC = 0x48494458; // "HIDX"

export interface HashIndexOptions {
  /** entries per file; default 1,048,576 (16 MiB files) */
  entriesPerFile?: number;
  /** hash slots per file; default = entriesPerFile (chains of about one entry) */
  slotsPerFile?: number;
}

/** FNV-1a over the UTF-16 code units of `key`: no allocation, and the same in every process. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The file being filled: all of it in memory, `written` of it on disk. */
class ActiveFile {
  readonly hashes: Uint32Array;
  readonly prevs: Uint32Array;
  readonly values: Float64Array;
  readonly slots: Uint32Array;
  count = 0;
  written = 0;

  /** opened in the background for a new file; every use of it is queued behind the open */
  readonly handle: Promise<FileHandle>;

  constructor(
    readonly first: number,
    handle: Promise<FileHandle>,
    capacity: number,
    slotCount: number,
  ) {
    this.handle = handle;
    handle.catch(() => undefined); // awaited by the writes, which report the failure
    this.hashes = new Uint32Array(capacity);
    this.prevs = new Uint32Array(capacity);
    this.values = new Float64Array(capacity);
    this.slots = new Uint32Array(slotCount);
  }

  get full(): boolean {
    return this.count === this.hashes.length;
  }

  add(hash: number, value: number): void {
    const i = this.count++;
    const slot = hash % this.slots.length;
    this.hashes[i] = hash;
    this.values[i] = value;
    this.prevs[i] = this.slots[slot]!;
    this.slots[slot] = i + 1;
  }

  /** Values of entries with `hash`, newest first. */
  matches(hash: number): number[] {
    const out: number[] = [];
    for (let at = this.slots[hash % this.slots.length]!; at !== 0; at = this.prevs[at - 1]!) {
      if (this.hashes[at - 1] === hash) out.push(this.values[at - 1]!);
    }
    return out;
  }

  /** Entries [from, to) in the file format. */
  encode(from: number, to: number): Buffer {
    const buf = Buffer.allocUnsafe((to - from) * HASH_INDEX_ENTRY_BYTES);
    for (let i = from; i < to; i++) {
      const at = (i - from) * HASH_INDEX_ENTRY_BYTES;
      buf.writeUInt32LE(this.hashes[i]!, at);
      buf.writeUInt32LE(this.prevs[i]!, at + 4);
      buf.writeDoubleLE(this.values[i]!, at + 8);
    }
    return buf;
  }
}

export class HashIndex {
  private readonly dir: string;
  private readonly capacity: number;
  private readonly slotCount: number;
  /** first entry ordinal of each sealed file, ascending */
  private readonly sealed: number[];
  private active: ActiveFile;
  /** full files whose seal (flush, slots file, fsync) is still running; walked in memory meanwhile */
  private sealing: ActiveFile[] = [];
  private writing: Promise<void> = Promise.resolve();
  private failure: Error | undefined;

  private constructor(dir: string, capacity: number, slotCount: number, sealed: number[], active: ActiveFile) {
    this.dir = dir;
    this.capacity = capacity;
    this.slotCount = slotCount;
    this.sealed = sealed;
    this.active = active;
  }

  /**
   * Opens the index in `dir`, creating it when missing. Sealed files lacking a valid slots file
   * get one; the last file is loaded into memory with its tail cut back to whole entries.
   */
  static async open(dir: string, options: HashIndexOptions = {}): Promise<HashIndex> {
    const capacity = options.entriesPerFile ?? 1 << 20;
    const slotCount = options.slotsPerFile ?? capacity;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 0xffff_fffe) throw new RangeError('entriesPerFile must be 1..2^32-2');
    if (!Number.isInteger(slotCount) || slotCount < 1) throw new RangeError('slotsPerFile must be a positive integer');
    await mkdir(dir, { recursive: true });
    const files = await listOffsetFiles(dir);
    const sealed = files.slice(0, -1);
    for (const first of sealed) await ensureSlots(dir, first, slotCount);
    const last = files.at(-1) ?? 0;
    const active = await loadFile(dir, last, capacity, slotCount);
    const index = new HashIndex(dir, capacity, slotCount, sealed, active);
    if (active.full) index.roll();
    return index;
  }

  /** Indexes `value` under `key`; visible to lookups at once, on disk after the next flush. */
  add(key: string, value: number): void {
    if (this.failure !== undefined) return; // reported by flush/sync; lookups still serve memory
    this.active.add(hashKey(key), value);
    if (this.active.full) this.roll();
  }

  /** Entries added and not yet written. */
  get unwritten(): number {
    return this.active.count - this.active.written + this.sealing.reduce((n, f) => n + f.count - f.written, 0);
  }

  /**
   * Candidate values for `key` (every value added under a key with the same hash), oldest first,
   * without repeats.
   */
  async lookup(key: string): Promise<number[]> {
    const hash = hashKey(key);
    // Per file newest first; files oldest first. A Set keeps first occurrences in order.
    const out = new Set<number>();
    const take = (newestFirst: number[]): void => {
      for (let i = newestFirst.length - 1; i >= 0; i--) out.add(newestFirst[i]!);
    };
    for (const first of this.sealed) take(await sealedMatches(this.dir, first, hash, this.slotCount));
    for (const f of [...this.sealing, this.active]) take(f.matches(hash));
    return [...out];
  }

  /** Writes what was added since the last flush (no fsync). Flushes run one at a time. */
  flush(): Promise<void> {
    return this.enqueue(() => writeUnwritten(this.active));
  }

  /** Everything added so far is on disk and durable. */
  async sync(): Promise<void> {
    await this.flush();
    const active = this.active;
    await this.enqueue(async () => (await active.handle).datasync());
  }

  async close(): Promise<void> {
    await this.sync().catch(() => undefined);
    await this.writing;
    await (await this.active.handle).close();
    if (this.failure !== undefined) throw this.failure;
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    const run = this.writing.then(async () => {
      if (this.failure !== undefined) throw this.failure;
      try {
        await work();
      } catch (err) {
        this.failure ??= err as Error;
        throw err;
      }
    });
    this.writing = run.catch(() => undefined);
    return run;
  }

  /** The active file is full: a new one takes the adds while the full one is sealed behind it. */
  private roll(): void {
    const full = this.active;
    const first = full.first + full.count;
    this.sealing.push(full);
    this.active = new ActiveFile(first, open(join(this.dir, offsetFileName(first)), 'w+'), this.capacity, this.slotCount);
    void this.enqueue(async () => {
      await seal(this.dir, full);
      await fsyncDir(this.dir);
      this.sealed.push(full.first);
      this.sealing = this.sealing.filter((f) => f !== full);
    }).catch(() => undefined); // recorded in this.failure, reported by the next flush or sync
  }
}

/**
 * Loads a file into memory, cut back to whole entries, with its slots and links rebuilt.
 * `capacity` undefined: as many entries as the file holds (a sealed file being repaired).
 */
async function loadFile(dir: string, first: number, capacity: number | undefined, slotCount: number): Promise<ActiveFile> {
  const handle = await open(join(dir, offsetFileName(first)), constants.O_RDWR | constants.O_CREAT);
  try {
    const { size } = await handle.stat();
    const count = Math.floor(size / HASH_INDEX_ENTRY_BYTES);
    // A file written with a larger entriesPerFile keeps all its entries (and is sealed at once).
    const f = new ActiveFile(first, Promise.resolve(handle), Math.max(capacity ?? count, count, 1), slotCount);
    const bytes = Buffer.allocUnsafe(count * HASH_INDEX_ENTRY_BYTES);
    if (count > 0) await handle.read(bytes, 0, bytes.length, 0);
    let consistent = true;
    for (let i = 0; i < count; i++) {
      const at = i * HASH_INDEX_ENTRY_BYTES;
      f.add(bytes.readUInt32LE(at), bytes.readDoubleLE(at + 8));
      // A crash can leave entries that never were (zeros): links are recomputed here, and the
      // file is rewritten by the next flush so that its links agree with memory.
      if (bytes.readUInt32LE(at + 4) !== f.prevs[i]) consistent = false;
    }
    f.written = consistent ? count : 0;
    if (size !== count * HASH_INDEX_ENTRY_BYTES) await handle.truncate(count * HASH_INDEX_ENTRY_BYTES);
    return f;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

function slotsPath(dir: string, first: number): string {
  return join(dir, `${offsetFileName(first)}.slots`);
}

async function writeSlots(dir: string, first: number, slots: Uint32Array, count: number): Promise<void> {
  const bytes = Buffer.allocUnsafe(slots.length * 4 + 8);
  for (let i = 0; i < slots.length; i++) bytes.writeUInt32LE(slots[i]!, i * 4);
  bytes.writeUInt32LE(SLOTS_MAGIC, slots.length * 4);
  bytes.writeUInt32LE(count, slots.length * 4 + 4);
  const tmp = `${slotsPath(dir, first)}.tmp`;
  const h = await open(tmp, 'w');
  try {
    await h.write(bytes, 0, bytes.length, 0);
    await h.datasync();
  } finally {
    await h.close();
  }
  await rename(tmp, slotsPath(dir, first));
}

/** A sealed file without a valid slots file (a crash while sealing) gets one from its entries. */
async function ensureSlots(dir: string, first: number, slotCount: number): Promise<void> {
  const expected = slotCount * 4 + 8;
  try {
    if ((await stat(slotsPath(dir, first))).size === expected) return;
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  await rm(`${slotsPath(dir, first)}.tmp`, { force: true });
  await seal(dir, await loadFile(dir, first, undefined, slotCount));
}

/** Writes the entries added since the last write. */
async function writeUnwritten(f: ActiveFile): Promise<void> {
  const to = f.count;
  if (to === f.written) return;
  const bytes = f.encode(f.written, to);
  await (await f.handle).write(bytes, 0, bytes.length, f.written * HASH_INDEX_ENTRY_BYTES);
  f.written = to;
}

/** A full file: its entries durable, then its slots file, then the handle closed. */
async function seal(dir: string, f: ActiveFile): Promise<void> {
  const handle = await f.handle;
  try {
    await writeUnwritten(f);
    await handle.datasync();
    await writeSlots(dir, f.first, f.slots, f.count);
  } finally {
    await handle.close();
  }
}

/** Values of the entries with `hash` in a sealed file, newest first, by reading its chain. */
async function sealedMatches(dir: string, first: number, hash: number, slotCount: number): Promise<number[]> {
  const out: number[] = [];
  const slots = await open(slotsPath(dir, first), 'r');
  const entries = await open(join(dir, offsetFileName(first)), 'r');
  try {
    const word = Buffer.alloc(4);
    await slots.read(word, 0, 4, (hash % slotCount) * 4);
    const entry = Buffer.alloc(HASH_INDEX_ENTRY_BYTES);
    for (let at = word.readUInt32LE(0); at !== 0; ) {
      const { bytesRead } = await entries.read(entry, 0, HASH_INDEX_ENTRY_BYTES, (at - 1) * HASH_INDEX_ENTRY_BYTES);
      if (bytesRead < HASH_INDEX_ENTRY_BYTES) break;
      if (entry.readUInt32LE(0) === hash) out.push(entry.readDoubleLE(8));
      const prev = entry.readUInt32LE(4);
      if (prev >= at) break; // links only point back; anything else is damage, not a chain
      at = prev;
    }
  } finally {
    await Promise.all([slots.close(), entries.close()]);
  }
  return out;
}
