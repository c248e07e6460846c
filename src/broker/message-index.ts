import { RecordType } from '../storage/index.js';
import type { AppendResult, JsonSublevel, MessageStore, RecordInput } from '../storage/index.js';
import type { Logger } from './logger.js';

/**
 * Storage format of the lookup index (level sublevel `msgindex`), for `message get` and `find`:
 *
 *   key `i\0<msgId>\0<physicalOffset, 20 digits>`          value 1
 *   key `k\0<topic>\0<key>\0<physicalOffset, 20 digits>`   value 1
 *   key `~sync`                                            value time of the last durability barrier
 *
 * Written off the send path: a SEND registers its records and the index is written in one batch
 * every FLUSH_MS, never a level write per message inline with the reply. Only what producers sent
 * is indexed (not the broker's retry and dead-letter copies), so an id finds the message as sent.
 * Derived data: the checkpoint hook flushes and syncs it, and `rebuild` re-indexes the log past
 * the last checkpoint after a crash.
 */
const FLUSH_MS = 25;
const SYNC_KEY = '~sync';
const MAX_BATCH = 10_000;

interface Entry {
  msgId: string;
  topic: string;
  keys: string[];
  physicalOffset: number;
}

export class MessageIndex {
  private readonly db: JsonSublevel<unknown>;
  private readonly store: MessageStore;
  private readonly log: Logger;
  private queued: Entry[] = [];
  private readonly pending = new Set<Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(options: { db: JsonSublevel<unknown>; store: MessageStore; log: Logger }) {
    this.db = options.db;
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
        for (let i = 0; i < records.length; i++) this.enqueue(records[i]!, results[i]!.physicalOffset);
      },
      () => undefined, // nothing stored, nothing to index; the sender gets the error
    );
    this.pending.add(work);
    void work.then(() => this.pending.delete(work));
  }

  /** Re-indexes what producers stored past the last checkpoint. */
  async rebuild(): Promise<void> {
    let n = 0;
    await this.store.scan(this.store.recovery.fromOffset, new Set([RecordType.NORMAL, RecordType.DELAYED]), (r) => {
      // Broker copies (retry, DLQ, system topics) are not indexed; see the header.
      if (r.topic.startsWith('%')) return;
      this.enqueue(r, r.physicalOffset);
      n++;
    });
    await this.beforeCheckpoint();
    if (n > 0) this.log('info', `message index: ${n} records re-indexed`);
  }

  /** Physical offsets of the copies stored with this id, oldest first. */
  async byId(msgId: string, limit: number): Promise<number[]> {
    return this.offsets(`i\u0000${msgId}\u0000`, limit);
  }

  async byKey(topic: string, key: string, limit: number): Promise<number[]> {
    return this.offsets(`k\u0000${topic}\u0000${key}\u0000`, limit);
  }

  /** Checkpoint hook: what the checkpoint covers is indexed and durable. */
  async beforeCheckpoint(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    await this.flush();
    await this.db.db.batch([{ type: 'put', key: SYNC_KEY, value: Date.now(), sublevel: this.db }] as never, { sync: true });
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    await this.flush();
  }

  private enqueue(r: { msgId: string; topic: string; keys: string[] }, physicalOffset: number): void {
    this.queued.push({ msgId: r.msgId, topic: r.topic, keys: r.keys, physicalOffset });
    if (this.queued.length >= MAX_BATCH) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS);
  }

  /** Writes what is queued in one batch; batches run one at a time. */
  private flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const entries = this.queued;
    this.queued = [];
    if (entries.length === 0) return this.writing;
    this.writing = this.writing.then(async () => {
      const ops: { type: 'put'; key: string; value: number }[] = [];
      for (const e of entries) {
        const at = String(e.physicalOffset).padStart(20, '0');
        ops.push({ type: 'put', key: `i\u0000${e.msgId}\u0000${at}`, value: 1 });
        for (const k of e.keys) ops.push({ type: 'put', key: `k\u0000${e.topic}\u0000${k}\u0000${at}`, value: 1 });
      }
      try {
        await this.db.batch(ops);
      } catch (err) {
        // Lookup is an aid, not the data: log and carry on (a restart's rebuild covers the rest).
        this.log('error', `message index write failed: ${(err as Error).message}`);
      }
    });
    return this.writing;
  }

  private async offsets(prefix: string, limit: number): Promise<number[]> {
    // `\u0001` sorts right after the prefix's final `\u0000`, so this range is exactly the prefix.
    const keys = await this.db.keys({ gt: prefix, lt: prefix.slice(0, -1) + '\u0001', limit }).all();
    return keys.map((k) => Number(k.slice(prefix.length)));
  }
}
