import { HashIndex, RecordType } from '../storage/index.js';
import type { AppendResult, JsonSublevel, MessageStore, RecordInput, StoredRecord } from '../storage/index.js';
import type { Logger } from './logger.js';

/**
 * The lookup index for `message get` (by id) and `message find` (by topic and key): a HashIndex
 * in `<data>/index`, keyed `i\0<msgId>` and `k\0<topic>\0<key>`, valued by physical offset.
 * The index holds key hashes, so every candidate is read and confirmed before it is returned.
 *
 * Written off the send path: a SEND registers its records, and they are added once stored. Only
 * what producers sent is indexed (not the broker's retry and dead-letter copies), so an id finds
 * the message as sent. Derived data: the checkpoint hook syncs it, and `rebuild` re-indexes the
 * log past the last checkpoint after a crash.
 *
 * Earlier brokers kept this index in level (sublevel `msgindex`), one entry per id and key:
 * measured at about a fifth of the broker's send path. `rebuild` moves such entries into the
 * HashIndex once and clears the sublevel.
 */
const FLUSH_MS = 25;
const FLUSH_ENTRIES = 10_000;

const idKey = (msgId: string): string => `i\u0000${msgId}`;
const keyKey = (topic: string, key: string): string => `k\u0000${topic}\u0000${key}`;

export class MessageIndex {
  private readonly index: HashIndex;
  private readonly legacy: JsonSublevel<unknown>;
  private readonly store: MessageStore;
  private readonly log: Logger;
  private readonly pending = new Set<Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(options: { index: HashIndex; legacy: JsonSublevel<unknown>; store: MessageStore; log: Logger }) {
    this.index = options.index;
    this.legacy = options.legacy;
    this.store = options.store;
    this.log = options.log;
  }

  /**
   * Indexes `records` once `appending` resolves. Registered at once, so a checkpoint that covers
   * these records waits for their index entries.
   */
  indexWhenStored(records: readonly RecordInput[], appending: Promise<AppendResult[]>): void {
    const work = appending.then(
      (results) => {
        for (let i = 0; i < records.length; i++) this.add(records[i]!, results[i]!.physicalOffset);
      },
      () => undefined, // nothing stored, nothing to index; the sender gets the error
    );
    this.pending.add(work);
    void work.then(() => this.pending.delete(work));
  }

  /** Moves a level-era index over, then re-indexes what producers stored past the last checkpoint. */
  async rebuild(): Promise<void> {
    let moved = 0;
    for await (const key of this.legacy.keys()) {
      const parts = key.split('\u0000');
      const offset = Number(parts.at(-1));
      if (parts.length < 3 || !Number.isSafeInteger(offset)) continue;
      this.index.add(parts.slice(0, -1).join('\u0000'), offset);
      moved++;
    }
    let n = 0;
    await this.store.scan(this.store.recovery.fromOffset, new Set([RecordType.NORMAL, RecordType.DELAYED]), (r) => {
      // Broker copies (retry, DLQ, system topics) are not indexed; see the header.
      if (r.topic.startsWith('%')) return;
      this.add(r, r.physicalOffset);
      n++;
    });
    await this.index.sync();
    if (moved > 0) {
      await this.legacy.clear();
      this.log('info', `message index: ${moved} entries moved from level to the index files`);
    }
    if (n > 0) this.log('info', `message index: ${n} records re-indexed`);
  }

  /** The stored copies of this id, oldest first. */
  async byId(msgId: string, limit: number): Promise<StoredRecord[]> {
    return this.confirmed(idKey(msgId), limit, (r) => r.msgId === msgId);
  }

  /** Messages of `topic` with `key`, oldest first. */
  async byKey(topic: string, key: string, limit: number): Promise<StoredRecord[]> {
    return this.confirmed(keyKey(topic, key), limit, (r) => r.topic === topic && r.keys.includes(key));
  }

  /** Checkpoint hook: what the checkpoint covers is indexed and durable. */
  async beforeCheckpoint(): Promise<void> {
    await this.settle();
    await this.index.sync();
  }

  async close(): Promise<void> {
    await this.settle();
    await this.index.close();
  }

  /** Every registered send's entries added; the timer's flush is left to the sync that follows. */
  private async settle(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private add(r: { msgId: string; topic: string; keys: string[] }, physicalOffset: number): void {
    this.index.add(idKey(r.msgId), physicalOffset);
    for (const k of r.keys) this.index.add(keyKey(r.topic, k), physicalOffset);
    if (this.index.unwritten >= FLUSH_ENTRIES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    // Lookup is an aid, not the data: log and carry on (a restart's rebuild covers the rest).
    this.index.flush().catch((err: unknown) => this.log('error', `message index write failed: ${(err as Error).message}`));
  }

  /** Reads each candidate and keeps those that are what the key says (hashes can collide). */
  private async confirmed(key: string, limit: number, matches: (r: StoredRecord) => boolean): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
    for (const offset of await this.index.lookup(key)) {
      if (out.length >= limit) break;
      let record: StoredRecord;
      try {
        record = await this.store.readAt(offset);
      } catch {
        continue; // removed by retention, or an entry past a crash's cut: not this message
      }
      if (matches(record)) out.push(record);
    }
    return out;
  }
}
