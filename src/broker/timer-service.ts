import { decodeReleaseBody, RecordType } from '../storage/index.js';
import type { AppendResult, MessageStore, RecordInput, ReleaseTarget, StoredRecord } from '../storage/index.js';
import type { Logger } from './logger.js';
import { SystemProperty } from '../common/system-properties.js';
import type { TimerIndex } from './timer-index.js';

/** Topic named by the RELEASE records the timer writes; recovery tells its releases by it. */
export const TIMER_TOPIC = '%TIMER%';
const BATCH = 256;
/** setTimeout cannot wait longer than ~24.8 days; far timers are re-checked at this interval. */
const MAX_SLEEP_MS = 3_600_000;

/**
 * Delayed delivery and retries at any time, not fixed levels. A delayed message is appended as a
 * held DELAYED record (durable, invisible) already carrying its real topic and queue, and indexed by
 * due time in level. One setTimeout, re-armed to the earliest due time, releases due records in
 * batches with `store.release` (a small pointer record, no copy), then deletes their index entries.
 *
 * Crash safety: index writes run as tracked work, and the checkpoint hook waits for them and syncs
 * level before the store's checkpoint may claim the records they describe. After a crash `rebuild`
 * re-reads the rest of the log: DELAYED records are (re)indexed, and records a %TIMER% RELEASE
 * already released are removed, so a record is never released twice (that would deliver it twice).
 */
export class TimerService {
  private readonly store: MessageStore;
  private readonly index: TimerIndex;
  private readonly log: Logger;
  private readonly pending = new Set<Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;
  private running = false;
  private again = false;
  private closed = false;
  private releaseSeq = 0;
  /** released, index delete not yet confirmed: never released again, only deleted again */
  private readonly releasedUnconfirmed = new Set<number>();

  constructor(options: { store: MessageStore; index: TimerIndex; log: Logger }) {
    this.store = options.store;
    this.index = options.index;
    this.log = options.log;
  }

  /** Re-indexes what the last checkpoint does not cover; returns how many timers are pending. */
  async rebuild(): Promise<number> {
    const added = new Map<number, { deliverAt: number; record: StoredRecord }>();
    const released = new Set<number>();
    await this.store.scan(this.store.recovery.fromOffset, new Set([RecordType.DELAYED, RecordType.RELEASE]), (r) => {
      if (r.type === RecordType.DELAYED) {
        added.set(r.physicalOffset, { deliverAt: deliverAtOf(r.properties), record: r });
      } else if (r.topic === TIMER_TOPIC) {
        for (const p of decodeReleaseBody(r.body, r.physicalOffset)) {
          if (!added.delete(p.physicalOffset)) released.add(p.physicalOffset);
        }
      }
    });
    await this.index.add([...added.values()].map(({ deliverAt, record }) => ({ deliverAt, target: toTarget(record) })));
    const removed = await this.index.removeOffsets(released);
    await this.index.sync();
    const count = await this.index.count();
    if (added.size > 0 || removed > 0) this.log('info', `timers: ${added.size} re-indexed, ${removed} already released; ${count} pending`);
    return count;
  }

  start(): void {
    void this.arm();
  }

  /**
   * Appends records (any mix of NORMAL and DELAYED; a DELAYED one carries DELIVER_AT) and indexes
   * the delayed ones; resolves once both are done.
   */
  append(records: RecordInput[]): Promise<AppendResult[]> {
    return this.track(
      this.store.append(records).then(async (results) => {
        const entries = [];
        for (let i = 0; i < records.length; i++) {
          const r = records[i]!;
          if (r.type !== RecordType.DELAYED) continue;
          const target = toTarget({ ...r, physicalOffset: results[i]!.physicalOffset, size: results[i]!.size });
          entries.push({ deliverAt: deliverAtOf(r.properties), target });
        }
        await this.index.add(entries);
        const earliest = Math.min(...entries.map((e) => e.deliverAt));
        if (earliest < this.armedFor) this.armAt(earliest);
        return results;
      }),
    );
  }

  /** Checkpoint hook: index work for records the checkpoint will cover is finished and durable. */
  async beforeCheckpoint(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    await this.index.sync();
  }

  pendingCount(): Promise<number> {
    return this.index.count();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await Promise.allSettled([...this.pending]);
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.pending.add(work);
    const done = (): void => void this.pending.delete(work);
    work.then(done, done);
    return work;
  }

  private async arm(): Promise<void> {
    if (this.closed) return;
    try {
      const earliest = await this.index.earliest();
      this.armedFor = Infinity;
      if (earliest !== undefined) this.armAt(earliest);
    } catch (err) {
      if (!this.closed) this.log('error', `timer index read failed: ${(err as Error).message}`);
    }
  }

  private armAt(deliverAt: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.armedFor = deliverAt;
    const wait = Math.min(MAX_SLEEP_MS, Math.max(0, deliverAt - Date.now()));
    this.timer = setTimeout(() => void this.tick(), wait);
  }

  /** Releases everything due. Runs one at a time: a second concurrent run could release twice. */
  private async tick(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.armedFor = Infinity;
    try {
      do {
        this.again = false;
        if (this.closed || this.store.state !== 'open') return;
        const due = await this.index.due(Date.now(), BATCH);
        if (due.length === 0) break;
        const fresh = due.filter((e) => !this.releasedUnconfirmed.has(e.target.physicalOffset));
        const msgId = `timer-${Date.now()}-${this.releaseSeq++}`;
        // Release and index delete are one tracked unit, so a checkpoint that covers the release
        // record also covers the delete (else recovery would find the entry and release it again).
        await this.track(
          (async () => {
            if (fresh.length > 0) {
              await this.store.release(fresh.map((e) => e.target), { topic: TIMER_TOPIC, msgId });
              for (const e of fresh) this.releasedUnconfirmed.add(e.target.physicalOffset);
            }
            await this.index.remove(due.map((e) => e.key));
            for (const e of due) this.releasedUnconfirmed.delete(e.target.physicalOffset);
          })(),
        );
        if (due.length === BATCH) this.again = true;
      } while (this.again);
    } catch (err) {
      if (!this.closed) this.log('error', `timer release failed (will retry): ${(err as Error).message}`);
      if (!this.closed) this.timer = setTimeout(() => void this.tick(), 1000);
      this.running = false;
      return;
    }
    this.running = false;
    await this.arm();
  }
}

function deliverAtOf(properties: Record<string, string>): number {
  const at = Number(properties[SystemProperty.DELIVER_AT]);
  return Number.isSafeInteger(at) && at >= 0 ? at : 0;
}

function toTarget(r: { physicalOffset: number; size: number; topic: string; queueId: number; tag?: string | undefined }): ReleaseTarget {
  const target: ReleaseTarget = { physicalOffset: r.physicalOffset, size: r.size, topic: r.topic, queueId: r.queueId };
  if (r.tag !== undefined) target.tag = r.tag;
  return target;
}
