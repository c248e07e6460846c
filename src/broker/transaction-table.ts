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

const RECENT_LIMIT = 50_000;

/**
 * Transaction state, in memory while it matters and in level for restarts.
 *
 *   level sublevel `tx`       id → Transaction (every state; resolved ones answer duplicates)
 *   level sublevel `tx-open`  id → 1 for PREPARED and PARKED, so a restart loads only those
 *
 * Open transactions live in memory with a min-heap of check times, so the checker touches only
 * what is due. Writes to level are batched behind the commit log: the log (halves, release and
 * rollback records) is the truth, and `sync()` makes level durable before the store checkpoints,
 * so after a crash replaying the log from the checkpoint restores anything level lost.
 */
export class TransactionTable {
  private readonly txs: JsonSublevel<Transaction>;
  private readonly openIndex: JsonSublevel<number>;
  private readonly open = new Map<string, Transaction>();
  /** resolved recently: duplicates and conflicts are answered without a level read */
  private readonly recent = new Map<string, Transaction>();
  private readonly due = new MinHeap<string>();
  private readonly dirty = new Set<string>();
  /** ids whose `tx-open` entry is in level: only those need a delete when they resolve */
  private readonly persistedOpen = new Set<string>();
  private unsynced = false;
  private flushing: Promise<void> = Promise.resolve();
  private flushTimer: NodeJS.Timeout | undefined;

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
    if (isOpen(tx.state)) {
      if (!this.open.has(tx.id)) this.open.set(tx.id, tx);
      if (tx.state === 'PREPARED') this.due.push(tx.nextCheckAt, tx.id);
    } else {
      this.open.delete(tx.id);
      this.recent.set(tx.id, tx);
      this.trimRecent();
    }
    this.dirty.add(tx.id);
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

  /** Resolved and open transactions from level (newest writes included), up to `limit`. */
  async listAll(limit: number): Promise<Transaction[]> {
    await this.flush();
    const out: Transaction[] = [];
    for await (const tx of this.txs.values({ limit })) out.push(this.open.get(tx.id) ?? tx);
    return out;
  }

  /** Writes what changed since the last flush in one level batch. */
  flush(sync = false): Promise<void> {
    // A failed flush must not stop later ones: each starts after the previous settles.
    this.flushing = this.flushing.catch(() => undefined).then(async () => {
      const ids = [...this.dirty];
      this.dirty.clear();
      if (ids.length === 0 && !(sync && this.unsynced)) return;
      const ops = [];
      for (const id of ids) {
        const tx = this.open.get(id) ?? this.recent.get(id);
        if (!tx) continue;
        ops.push({ type: 'put' as const, key: id, value: tx, sublevel: this.txs });
        // Most transactions are prepared and resolved between two flushes: level never saw them
        // open, so one put is all they cost.
        if (isOpen(tx.state)) {
          if (!this.persistedOpen.has(id)) ops.push({ type: 'put' as const, key: id, value: 1, sublevel: this.openIndex });
        } else if (this.persistedOpen.has(id)) {
          ops.push({ type: 'del' as const, key: id, sublevel: this.openIndex });
        }
      }
      if (ops.length === 0) ops.push({ type: 'put' as const, key: '\uffffsync', value: 1, sublevel: this.openIndex });
      try {
        await this.txs.db.batch(ops as never, { sync });
        this.unsynced = !sync;
        for (const op of ops) {
          if (op.sublevel !== this.openIndex) continue;
          if (op.type === 'put') this.persistedOpen.add(op.key);
          else this.persistedOpen.delete(op.key);
        }
      } catch (err) {
        for (const id of ids) this.dirty.add(id);
        throw err;
      }
    });
    return this.flushing;
  }

  /** Writes changes behind the request path, every `intervalMs`. */
  startFlushing(onError: (err: Error) => void, intervalMs = 50): void {
    this.flushTimer = setInterval(() => this.flush().catch(onError), intervalMs);
    this.flushTimer.unref();
  }

  stopFlushing(): void {
    clearInterval(this.flushTimer);
  }

  /** Before a storage checkpoint: everything derived from the log so far is durable in level. */
  sync(): Promise<void> {
    return this.flush(true);
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

  private track(tx: Transaction): void {
    this.persistedOpen.add(tx.id);
    this.open.set(tx.id, tx);
    if (tx.state === 'PREPARED') this.due.push(tx.nextCheckAt, tx.id);
  }

  private trimRecent(): void {
    for (const id of this.recent.keys()) {
      if (this.recent.size <= RECENT_LIMIT) break;
      if (this.dirty.has(id)) break; // not in level yet: keep it until it is
      this.recent.delete(id);
    }
  }
}
