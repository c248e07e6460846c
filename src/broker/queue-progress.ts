/**
 * Consumption progress of one consumer group on one queue.
 *
 *   committed  every offset below it is acked (or filtered out); persisted, it is where a restart
 *              resumes, so it never passes an un-acked message: a crash means redelivery, not loss.
 *   next       the next offset never handed out in this broker's life.
 *   done       offsets >= committed that are acked or filtered (acks arrive out of order).
 *   inflight   offsets handed to a member and not yet acked, with their lease deadline.
 *   redeliver  offsets to hand out again before `next` (nacked, lease expired, owner died).
 */
export interface Lease {
  memberId: string;
  deadline: number;
  /** what this delivery was told: earlier failures of the message (see ConsumerGroup) */
  reconsumeTimes: number;
  /** deliveries of this offset so far, this one included */
  deliveries: number;
}

export class QueueProgress {
  readonly topic: string;
  readonly queueId: number;
  committed: number;
  next: number;
  readonly done = new Set<number>();
  readonly inflight = new Map<number, Lease>();
  private readonly redeliverQueue: number[] = [];
  /**
   * Deliveries so far of offsets released for redelivery, for `reconsumeTimes`; an offset in
   * flight keeps its count in its lease. Most offsets are delivered once and never enter it: two
   * map operations fewer per message than counting every offset here.
   */
  private readonly deliveries = new Map<number, number>();
  /** a read of this queue is under way; a second one would hand out the same offsets */
  reading = false;
  /** committed changed since it was last persisted */
  dirty = false;

  constructor(topic: string, queueId: number, committed: number) {
    this.topic = topic;
    this.queueId = queueId;
    this.committed = committed;
    this.next = committed;
  }

  get key(): string {
    return `${this.topic}/${this.queueId}`;
  }

  get hasRedeliveries(): boolean {
    return this.redeliverQueue.length > 0;
  }

  /** Offsets due again, lowest first; removes them from the redelivery list. */
  takeRedeliveries(max: number): number[] {
    return this.redeliverQueue.splice(0, max);
  }

  /**
   * Records a hand-out and returns its reconsumeTimes: `base` (failures before this copy of the
   * message existed, e.g. a retry record's count) plus earlier deliveries of this offset.
   */
  lease(offset: number, memberId: string, deadline: number, base = 0): number {
    let before = 0;
    if (this.deliveries.size > 0) {
      before = this.deliveries.get(offset) ?? 0;
      this.deliveries.delete(offset);
    }
    const reconsumeTimes = base + before;
    this.inflight.set(offset, { memberId, deadline, reconsumeTimes, deliveries: before + 1 });
    return reconsumeTimes;
  }

  /** Takes an offset out of flight without making it deliverable (its failure is being handled). */
  detach(offset: number): Lease | undefined {
    const lease = this.inflight.get(offset);
    this.inflight.delete(offset);
    return lease;
  }

  /** Puts a detached offset back for redelivery (handling its failure did not work out). */
  reattach(offset: number, lease: Lease): void {
    if (offset < this.committed || this.done.has(offset)) return;
    this.inflight.set(offset, lease);
    this.release(offset);
  }

  /** Offsets whose lease ran out, without releasing them. */
  expired(now: number): number[] {
    const out: number[] = [];
    for (const [offset, lease] of this.inflight) if (lease.deadline <= now) out.push(offset);
    return out;
  }

  /** The offset was processed (acked) or never needed delivery (filtered). */
  markDone(offset: number): void {
    if (offset < this.committed || (offset > this.committed && this.done.has(offset))) return;
    this.inflight.delete(offset);
    if (this.deliveries.size > 0) this.deliveries.delete(offset);
    if (this.redeliverQueue.length > 0) {
      const i = this.redeliverQueue.indexOf(offset);
      if (i >= 0) this.redeliverQueue.splice(i, 1);
    }
    if (offset > this.committed) {
      this.done.add(offset);
      return;
    }
    // The lowest open offset (acks mostly come in order): commit it, and the acked run after it,
    // without passing it through `done`.
    this.committed++;
    this.dirty = true;
    if (this.done.size > 0) while (this.done.delete(this.committed)) this.committed++;
    if (this.next < this.committed) this.next = this.committed;
  }

  /** Puts an in-flight offset back for redelivery (nack, lease expiry, member gone). */
  release(offset: number): boolean {
    const lease = this.inflight.get(offset);
    if (lease === undefined) return false;
    this.inflight.delete(offset);
    this.deliveries.set(offset, lease.deliveries);
    const q = this.redeliverQueue;
    let i = q.length;
    while (i > 0 && q[i - 1]! > offset) i--;
    q.splice(i, 0, offset);
    return true;
  }

  /** Releases everything a member holds; returns how many offsets came back. */
  releaseMember(memberId: string): number {
    let n = 0;
    for (const [offset, lease] of this.inflight) if (lease.memberId === memberId && this.release(offset)) n++;
    return n;
  }

  /** Releases leases past their deadline; returns how many came back. */
  releaseExpired(now: number): number {
    let n = 0;
    for (const [offset, lease] of this.inflight) if (lease.deadline <= now && this.release(offset)) n++;
    return n;
  }

  /** Messages the group has not yet acked, given the queue's visible max offset. */
  lag(maxOffset: number): number {
    return Math.max(0, maxOffset - this.committed - this.done.size);
  }
}
