/**
 * The most recently used blocks of the commit log, by the log offset they start at. A consumer
 * catching up on one queue of a topic reads that queue's records, which lie between the other
 * queues' records in the log: without this cache every queue's reads copied the whole stretch
 * again (8 queues, 8 times the bytes). Only immutable data may be cached (blocks wholly below
 * the written end of their segment); `clear` after anything that cuts the log.
 *
 * Entries are promises, so readers of the same block at the same time share one read; a failed
 * read is forgotten, so the next reader tries again.
 */
export class BlockCache {
  private readonly blocks = new Map<number, Promise<Buffer>>();
  private readonly capacity: number;

  /** `capacity`: how many blocks it keeps; 0 keeps none (every `get` loads). */
  constructor(capacity: number) {
    this.capacity = capacity;
  }

  has(start: number): boolean {
    return this.blocks.has(start);
  }

  get(start: number, load: () => Promise<Buffer>): Promise<Buffer> {
    const hit = this.blocks.get(start);
    if (hit !== undefined) {
      // Map order is the LRU order: move a hit to the end.
      this.blocks.delete(start);
      this.blocks.set(start, hit);
      return hit;
    }
    const loading = load();
    if (this.capacity === 0) return loading;
    this.blocks.set(start, loading);
    loading.catch(() => {
      if (this.blocks.get(start) === loading) this.blocks.delete(start);
    });
    while (this.blocks.size > this.capacity) this.blocks.delete(this.blocks.keys().next().value as number);
    return loading;
  }

  clear(): void {
    this.blocks.clear();
  }
}
