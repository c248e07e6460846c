import { MinHeap } from '../common/min-heap.js';
import type { ResolutionSource, TransactionInfo, TransactionState } from '../protocol/transaction-commands.js';
import type { JsonSublevel, MetadataStore } from '../storage/index.js';
import { isOpen } from './transaction-state.js';

/** One half message of a transaction: where it sits in the commit log and where it will go. */
export interface Half {
  physicalOffset: number;
  size: number;
  msgId: string;
  topic: string;
  queueId: number;
  tag?: string;
  keys: string[];
}

export interface Transaction {
  id: string;
  group: string;
  state: TransactionState;
  /** broker clock, ms: store time of the first half */
  createdAt: number;
  checkTimes: number;
  nextCheckAt: number;
  resolvedAt?: number;
  resolvedBy?: ResolutionSource;
  halves: Half[];
}

/** resolved transactions kept in memory (oldest out first) */
export const RECENT_LIMIT = 50_000;
/** leftover entries the due heap may hold beyond twice the open transactions before it is rebuilt */
const DUE_SLACK = 4096;

/**
 * Transaction state, in memory while it matters and in level for what outlives a checkpoint.
 *
 *   level sublevel `tx`       id → Transaction (open at some checkpoint; later its resolution)
 *   level sublevel `tx-open`  id → 1 for PREPARED and PARKED, so a restart loads only those
 *
 * The commit log (halves, release and rollback records) is the truth, and a restart replays it
 * from the store's last checkpoint. So level only needs what that replay cannot see: transactions
 * still open when a checkpoint passes their halves. `sync()`, run before every checkpoint, writes
 * exactly those (and the resolution of any it wrote before). A transaction prepared and resolved
 * between two checkpoints, which is nearly all of them, never touches level: at tens of thousands
 * a second a level write each was the largest cost on the transaction path (about 6 µs of main
 * thread per put, measured), and level would grow without bound.
 *
 * Resolved transactions answer duplicates and `tx show` from memory (the last 50,000), from
 * level if they were ever open at a checkpoint, or after a restart from the replayed log tail.
 * Open transactions live in memory with a min-heap of check times, so the checker touches only
 * what is due.
 */
export class TransactionTable {
  private readonly txs: JsonSublevel<Transaction>;
  private readonly openIndex: JsonSublevel<number>;
  private readonly open = new Map<string, Transaction>();
  /** resolved recently: duplicates and conflicts are answered without a level read */
  private readonly recent = new Map<string, Transaction>();
  /**
   * `recent`'s ids oldest first, from `recentHead`. Trimming walks this array, not the map: a map
   * iterator starts at the deleted slots of evicted entries and skips them one by one until V8
   * rehashes, which cost 18 µs per resolution at a full table (the largest item on the tx path).
   */
  private recentOrder: string[] = [];
  private recentHead = 0;
  private readonly due = new MinHeap<string>();
  /** ids of transactions created since the last sync: the ones it may have to write */
  private created: string[] = [];
  /** ids level holds as open that changed since the last sync (rare: checked or resolved late) */
  private readonly changed = new Set<string>();
  /** ids whose `tx-open` entry is in level: only those need a delete when they resolve */
  private readonly persistedOpen = new Set<string>();
  private syncing: Promise<void> = Promise.resolve();

  constructor(metadata: MetadataStore) {
    this.txs = metadata.sublevel<Transaction>('tx');
    this.openIndex = metadata.sublevel<number>('tx-open');
  }

  /** Loads the open transactions (PREPARED, PARKED) from level. */
  async load(): Promise<number> {
    for await (const id of this.openIndex.keys()) {
      const tx = await this.txs.get(id);
      if (tx && isOpen(tx.state)) this.track(tx);
    }
    return this.open.size;
  }

  get openCount(): number {
    return this.open.size;
  }

  /** The transaction as known now, from memory or level. */
  async get(id: string): Promise<Transaction | undefined> {
    return this.open.get(id) ?? this.recent.get(id) ?? (await this.txs.get(id));
  }

  /**
   * The transaction if memory knows it: open, or resolved recently (the last 50,000). The hot
   * path (a new transaction's first half) must not pay a level read to learn it is new.
   */
  peek(id: string): Transaction | undefined {
    return this.open.get(id) ?? this.recent.get(id);
  }

  /** Records a change (new, more halves, rescheduled, resolved) and schedules its write. */
  save(tx: Transaction): void {
    // Per transaction this is the hot path: a few operations on maps of tens of thousands of
    // entries each cost about a microsecond, so it does no more than it must.
    if (isOpen(tx.state)) {
      const size = this.open.size;
      this.open.set(tx.id, tx);
      if (this.open.size > size) this.created.push(tx.id);
      this.schedule(tx);
      if (this.due.size > 2 * this.open.size + DUE_SLACK) this.rebuildDue();
    } else {
      this.open.delete(tx.id);
      const size = this.recent.size;
      this.recent.set(tx.id, tx);
      if (this.recent.size > size) this.recentOrder.push(tx.id);
      this.trimRecent();
    }
    if (this.persistedOpen.has(tx.id)) this.changed.add(tx.id);
  }

  /**
   * Pops transactions whose check is due (PREPARED, nextCheckAt <= now), at most `limit`. Heap
   * entries left behind by a reschedule or a resolution are skipped.
   */
  takeDue(now: number, limit: number): Transaction[] {
    const out: Transaction[] = [];
    while (out.length < limit) {
      const at = this.due.peekKey();
      if (at === undefined || at > now) break;
      const { value: id } = this.due.pop()!;
      const tx = this.open.get(id);
      if (tx && tx.state === 'PREPARED' && tx.nextCheckAt === at) out.push(tx);
    }
    return out;
  }

  /** When the earliest check is due, or undefined when none is scheduled. */
  nextDueAt(): number | undefined {
    return this.due.peekKey();
  }

  listOpen(state: 'prepared' | 'parked' | 'all'): Transaction[] {
    const wanted = state === 'prepared' ? 'PREPARED' : state === 'parked' ? 'PARKED' : undefined;
    return [...this.open.values()].filter((tx) => wanted === undefined || tx.state === wanted);
  }

  /** Open and resolved transactions, from memory and level, up to `limit`. */
  async listAll(limit: number): Promise<Transaction[]> {
    const out = new Map<string, Transaction>();
    for (const tx of this.open.values()) if (out.size < limit) out.set(tx.id, tx);
    for (const tx of this.recent.values()) if (out.size < limit) out.set(tx.id, tx);
    if (out.size < limit) {
      for await (const tx of this.txs.values()) {
        if (out.size >= limit) break;
        if (!out.has(tx.id)) out.set(tx.id, tx);
      }
    }
    return [...out.values()];
  }

  /**
   * Before a storage checkpoint: every transaction the checkpoint's log range leaves open is
   * durable in level, and so is the resolution of any level holds as open. Writes one synced
   * batch (nothing when nothing qualifies).
   */
  sync(): Promise<void> {
    // A failed sync must not stop later ones: each starts after the previous settles.
    this.syncing = this.syncing.catch(() => undefined).then(async () => {
      // Under load nearly every transaction created since the last sync is resolved by now: the
      // open ones are the few to look at (the check-back's backlog is the opposite case).
      const created = this.created.length > this.open.size ? [...this.open.keys()].filter((id) => !this.persistedOpen.has(id)) : this.created;
      const ids = [...created, ...this.changed];
      this.created = [];
      this.changed.clear();
      const ops = [];
      for (const id of ids) {
        const tx = this.open.get(id) ?? this.recent.get(id);
        if (!tx) continue;
        if (isOpen(tx.state)) {
          ops.push({ type: 'put' as const, key: id, value: tx, sublevel: this.txs });
          if (!this.persistedOpen.has(id)) ops.push({ type: 'put' as const, key: id, value: 1, sublevel: this.openIndex });
        } else if (this.persistedOpen.has(id)) {
          ops.push({ type: 'put' as const, key: id, value: tx, sublevel: this.txs });
          ops.push({ type: 'del' as const, key: id, sublevel: this.openIndex });
        }
        // Resolved and never written while open: the log replay covers it, level needs nothing.
      }
      if (ops.length === 0) return;
      try {
        await this.txs.db.batch(ops as never, { sync: true });
        for (const op of ops) {
          if (op.sublevel !== this.openIndex) continue;
          if (op.type === 'put') this.persistedOpen.add(op.key);
          else this.persistedOpen.delete(op.key);
        }
      } catch (err) {
        for (const id of ids) {
          if (this.persistedOpen.has(id)) this.changed.add(id);
          else this.created.push(id);
        }
        throw err;
      }
    });
    return this.syncing;
  }

  toInfo(tx: Transaction): TransactionInfo {
    const info: TransactionInfo = {
      transactionId: tx.id,
      producerGroup: tx.group,
      state: tx.state,
      createdAt: tx.createdAt,
      checkTimes: tx.checkTimes,
      messages: tx.halves.map((h) => ({ msgId: h.msgId, topic: h.topic, queueId: h.queueId, keys: h.keys, ...(h.tag !== undefined ? { tag: h.tag } : {}) })),
    };
    if (tx.state === 'PREPARED') info.nextCheckAt = tx.nextCheckAt;
    if (tx.resolvedAt !== undefined) info.resolvedAt = tx.resolvedAt;
    if (tx.resolvedBy !== undefined) info.resolvedBy = tx.resolvedBy;
    return info;
  }

  /**
   * The due heap anew from the open transactions. Resolved ones leave their entries behind (a
   * heap has no cheap delete), and under load nearly every entry is such a leftover: kept until
   * its check time, they held every transaction id of the last timeout's worth (232,000 at
   * 60,000 tx/s), each id surviving young-generation GCs that then copied and scanned them.
   */
  private rebuildDue(): void {
    this.due.clear();
    for (const tx of this.open.values()) this.schedule(tx);
  }

  private track(tx: Transaction): void {
    this.persistedOpen.add(tx.id);
    this.open.set(tx.id, tx);
    this.schedule(tx);
  }

  /** A PREPARED transaction's next check in the due heap (PARKED ones wait for an operator). */
  private schedule(tx: Transaction): void {
    if (tx.state === 'PREPARED') this.due.push(tx.nextCheckAt, tx.id);
  }

  private trimRecent(): void {
    const order = this.recentOrder;
    while (this.recent.size > RECENT_LIMIT && this.recentHead < order.length) {
      const id = order[this.recentHead]!;
      if (this.changed.size > 0 && this.changed.has(id)) break; // its resolution is not in level yet
      this.recent.delete(id);
      this.recentHead++;
    }
    // Drop the evicted ids now and then, not on every resolution.
    if (this.recentHead > 4096 && this.recentHead * 2 > order.length) {
      this.recentOrder = order.slice(this.recentHead);
      this.recentHead = 0;
    }
  }
}
