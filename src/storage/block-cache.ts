/**
 * The most recently used blocks of a file set, by the offset they start at. A consumer catching up
 * on one queue of a topic reads that queue's records, which lie between the other queues' records
 * in the log: without this cache every queue's reads copied the whole stretch again (8 queues, 8
 * times the bytes). Only immutable data may be cached (blocks wholly below the written end of
 * their segment); `clear` after anything that cuts the log.
 *
 * Entries are promises, so readers of the same block at the same time share one read; a failed
 * read is forgotten, so the next reader tries again.
 *
 * Two ways in. `get` hands out the block itself, and the caller may keep views of it. `acquire`
 * is for a caller that copies what it needs and then releases: a block only ever acquired is, once
 * evicted and released by all, handed to a later load to read into. In a drain that is most of the
 * off-heap memory the broker allocated (a new 1 MiB buffer per block read), and the allocations
 * made V8 run a mark-compact every 100-120 ms ("external memory pressure").
 */
export class BlockCache {
  private readonly blocks = new Map<number, Entry>();
  private readonly capacity: number;
  /** memory of evicted blocks nobody reads any more, for the next loads */
  private readonly spare: Buffer[] = [];

  /** `capacity`: how many blocks it keeps; 0 keeps none (every `get` loads). */
  constructor(capacity: number) {
    this.capacity = capacity;
  }

  has(start: number): boolean {
    return this.blocks.has(start);
  }

  /** The block at `start`, loaded with `load` if it is not cached. Its memory is never reused. */
  get(start: number, load: () => Promise<Buffer>): Promise<Buffer> {
    const entry = this.entry(start, () => load());
    entry.escaped = true;
    return entry.loading;
  }

  /**
   * The block at `start` for a caller that copies from it and then calls `release` (once; later
   * calls do nothing). `load` gets evicted memory to read into when there is some; it must return
   * a buffer over that memory, or a new one when `spare` is undefined or too small.
   */
  acquire(start: number, load: (spare: Buffer | undefined) => Promise<Buffer>): { bytes: Promise<Buffer>; release: () => void } {
    const entry = this.entry(start, load);
    entry.pins++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      entry.pins--;
      if (entry.evicted) this.recycle(entry);
    };
    return { bytes: entry.loading, release };
  }

  clear(): void {
    for (const entry of this.blocks.values()) this.evict(entry);
    this.blocks.clear();
  }

  private entry(start: number, load: (spare: Buffer | undefined) => Promise<Buffer>): Entry {
    const hit = this.blocks.get(start);
    if (hit !== undefined) {
      // Map order is the LRU order: move a hit to the end.
      this.blocks.delete(start);
      this.blocks.set(start, hit);
      return hit;
    }
    // Make room first, so that the block evicted now can lend its memory to this load.
    while (this.blocks.size > 0 && this.blocks.size >= this.capacity) {
      const oldest = this.blocks.keys().next().value as number;
      this.evict(this.blocks.get(oldest)!);
      this.blocks.delete(oldest);
    }
    const entry: Entry = { loading: load(this.spare.pop()), pins: 0, evicted: this.capacity === 0, escaped: false, memory: undefined };
    entry.loading.then(
      (bytes) => {
        entry.memory = bytes;
        if (entry.evicted) this.recycle(entry);
      },
      () => {
        if (this.blocks.get(start) === entry) this.blocks.delete(start);
      },
    );
    if (this.capacity > 0) this.blocks.set(start, entry);
    return entry;
  }

  private evict(entry: Entry): void {
    entry.evicted = true;
    this.recycle(entry);
  }

  /** Keeps an evicted block's memory for a later load once nobody can be reading it. */
  private recycle(entry: Entry): void {
    const memory = entry.memory;
    if (memory === undefined || entry.pins > 0 || entry.escaped) return;
    entry.memory = undefined;
    // Whole allocations only: a short read's view would make a later read short too.
    if (this.spare.length < MAX_SPARE && memory.byteOffset === 0 && memory.length === memory.buffer.byteLength) this.spare.push(memory);
  }
}

interface Entry {
  loading: Promise<Buffer>;
  /** readers that acquired it and have not released it */
  pins: number;
  evicted: boolean;
  /** handed out by `get`: views of it may live anywhere, so its memory is never reused */
  escaped: boolean;
  /** the loaded bytes, until recycled */
  memory: Buffer | undefined;
}

/** Enough for the blocks evicted while readers still copied from them; more would only hold memory. */
const MAX_SPARE = 4;
