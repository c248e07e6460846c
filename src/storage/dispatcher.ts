import type { ConsumeQueue, PutOutcome } from './consume-queue.js';
import type { ConsumeQueueSet } from './consume-queue-set.js';
import { RecordType, type DispatchListener, type StoreLog } from './types.js';

/** What the dispatcher needs of one durable record. */
export interface DispatchItem {
  type: number;
  topic: string;
  queueId: number;
  queueOffset: number;
  physicalOffset: number;
  size: number;
  tagHash: number;
}

export type DispatchOutcome = PutOutcome | 'skipped';

/**
 * Turns durable commit-log records into consume-queue entries, in log order. Live appends and
 * recovery both go through `apply`, so which record types become visible is decided in one place.
 */
export class Dispatcher {
  /** End of the last dispatched record: every record below it has been dispatched. */
  dispatchedUpTo = 0;
  private readonly queues: ConsumeQueueSet;
  private readonly log: StoreLog;
  private readonly listeners = new Set<DispatchListener>();

  constructor(queues: ConsumeQueueSet, log: StoreLog) {
    this.queues = queues;
    this.log = log;
  }

  apply(item: DispatchItem): DispatchOutcome {
    return this.applyTo(item, item.type === RecordType.NORMAL ? this.queues.getOrCreate(item.topic, item.queueId) : undefined);
  }

  /** `cq`: the item's queue when it is visible (NORMAL); a held or internal record has none. */
  private applyTo(item: DispatchItem, cq: ConsumeQueue | undefined): DispatchOutcome {
    const end = item.physicalOffset + item.size;
    if (end > this.dispatchedUpTo) this.dispatchedUpTo = end;
    // A transaction half (PREPARED) stays invisible until its commit record is dispatched.
    return cq === undefined ? 'skipped' : cq.put(item.queueOffset, item.physicalOffset, item.size, item.tagHash);
  }

  /** Live path: one writer round of appends, each a list of records in log order. */
  dispatchRound(appends: DispatchItem[][]): void {
    const touched = new Set<ConsumeQueue>();
    for (const items of appends) {
      for (const item of items) {
        const cq = item.type === RecordType.NORMAL ? this.queues.getOrCreate(item.topic, item.queueId) : undefined;
        const outcome = this.applyTo(item, cq);
        if (outcome === 'added') touched.add(cq!);
        else if (outcome !== 'skipped') {
          // Offsets are assigned in log order and dispatched in log order; this is a bug, not bad input.
          this.log('error', `dispatch: ${outcome} queue offset`, { ...item });
        }
      }
    }
    for (const { topic, queueId, maxOffset } of touched) {
      for (const listener of this.listeners) {
        try {
          listener(topic, queueId, maxOffset);
        } catch (err) {
          this.log('error', 'dispatch listener threw', { topic, queueId, error: String(err) });
        }
      }
    }
  }

  onDispatch(listener: DispatchListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}
