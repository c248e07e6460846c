import { matchesTag, parseTagExpression } from '../common/tags.js';
import type { TagFilter } from '../common/tags.js';
import type { StartFrom } from '../protocol/commands.js';
import type { MessageStore, StoredRecord } from '../storage/index.js';
import { QueueProgress } from './queue-progress.js';

/**
 * One consumer group in clustering mode: each message goes to one member. The broker, not the
 * clients, assigns queues to live members (so two clients can never disagree about who owns a
 * queue) and tracks every delivery until it is acked.
 */
export interface Member {
  readonly id: string;
  readonly clientId: string;
  readonly address: string;
  readonly subscriptions: Map<string, TagFilter>;
  queues: QueueProgress[];
  /** round-robin start for the next pull, so one busy queue does not starve the others */
  cursor: number;
  waiting: ParkedPull[];
  alive: boolean;
}

export interface Delivery {
  record: StoredRecord;
  reconsumeTimes: number;
}

interface ParkedPull {
  max: number;
  invisibleMs: number;
  resolve: (deliveries: Delivery[]) => void;
  timer: NodeJS.Timeout;
}

export interface ConsumerGroupDeps {
  store: MessageStore;
  /** queue count of a topic, undefined if it does not exist */
  queueCount: (topic: string) => number | undefined;
  /** committed offsets loaded from metadata, `topic/queueId` → offset */
  storedOffsets: Map<string, number>;
  maxPullBytes: number;
}

export class ConsumerGroup {
  readonly name: string;
  readonly members = new Map<string, Member>();
  readonly progress = new Map<string, QueueProgress>();
  private readonly deps: ConsumerGroupDeps;
  private owners = new Map<string, Member>();

  constructor(name: string, deps: ConsumerGroupDeps) {
    this.name = name;
    this.deps = deps;
  }

  get subscribedTopics(): Set<string> {
    const topics = new Set<string>();
    for (const m of this.members.values()) for (const t of m.subscriptions.keys()) topics.add(t);
    return topics;
  }

  async join(
    member: { id: string; clientId: string; address: string },
    subscriptions: Record<string, string>,
    startFrom: StartFrom,
  ): Promise<Member> {
    const subs = new Map<string, TagFilter>();
    for (const [topic, expr] of Object.entries(subscriptions)) {
      subs.set(topic, parseTagExpression(expr));
      const queues = this.deps.queueCount(topic) ?? 0;
      for (let q = 0; q < queues; q++) await this.ensureProgress(topic, q, startFrom);
    }
    const m: Member = { ...member, subscriptions: subs, queues: [], cursor: 0, waiting: [], alive: true };
    this.members.set(m.id, m);
    this.rebalance();
    return m;
  }

  leave(memberId: string): void {
    const m = this.members.get(memberId);
    if (!m) return;
    m.alive = false;
    this.members.delete(memberId);
    for (const p of this.progress.values()) p.releaseMember(memberId);
    for (const w of m.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.resolve([]);
    }
    this.rebalance();
  }

  /** Queues that appeared since (topic created or grown) get progress and an owner. */
  async refreshTopic(topic: string): Promise<void> {
    if (!this.subscribedTopics.has(topic)) return;
    const queues = this.deps.queueCount(topic) ?? 0;
    for (let q = 0; q < queues; q++) await this.ensureProgress(topic, q, 'earliest');
    this.rebalance();
  }

  /**
   * Hands out up to `max` messages from the member's queues, holding the request up to `waitMs`
   * when there are none (long polling: woken by dispatch, redelivery or rebalance).
   */
  async pull(memberId: string, max: number, waitMs: number, invisibleMs: number): Promise<Delivery[]> {
    const m = this.members.get(memberId);
    if (!m) return [];
    const out = await this.collect(m, max, invisibleMs);
    if (out.length > 0 || waitMs <= 0 || !m.alive) return out;
    return new Promise<Delivery[]>((resolve) => {
      const parked: ParkedPull = {
        max,
        invisibleMs,
        resolve,
        timer: setTimeout(() => {
          const i = m.waiting.indexOf(parked);
          if (i >= 0) m.waiting.splice(i, 1);
          resolve([]);
        }, waitMs),
      };
      m.waiting.push(parked);
    });
  }

  ack(topic: string, queueId: number, offset: number): void {
    this.progress.get(`${topic}/${queueId}`)?.markDone(offset);
  }

  /** "Not consumed": the message comes again once `delayMs` has passed. */
  nack(topic: string, queueId: number, offset: number, delayMs: number): void {
    const lease = this.progress.get(`${topic}/${queueId}`)?.inflight.get(offset);
    if (lease) lease.deadline = Date.now() + delayMs;
  }

  /** Releases expired leases and wakes the owners of queues that got redeliveries. */
  expireLeases(now: number): void {
    for (const p of this.progress.values()) {
      if (p.inflight.size > 0 && p.releaseExpired(now) > 0) this.wakeOwner(p.key);
    }
  }

  /** New messages are visible on a queue: wake its owner's parked pull, if any. */
  onDispatch(topic: string, queueId: number): void {
    this.wakeOwner(`${topic}/${queueId}`);
  }

  ownerOf(key: string): Member | undefined {
    return this.owners.get(key);
  }

  close(): void {
    for (const id of [...this.members.keys()]) this.leave(id);
  }

  private async ensureProgress(topic: string, queueId: number, startFrom: StartFrom): Promise<QueueProgress> {
    const key = `${topic}/${queueId}`;
    let p = this.progress.get(key);
    if (p) return p;
    const { store } = this.deps;
    let start = this.deps.storedOffsets.get(key);
    if (start === undefined) {
      if (startFrom === 'latest') start = store.maxOffset(topic, queueId);
      else if (typeof startFrom === 'number') start = await store.offsetForTimestamp(topic, queueId, startFrom);
      else start = store.minOffset(topic, queueId);
    }
    // Another join may have created it while we awaited the timestamp lookup.
    p = this.progress.get(key);
    if (p) return p;
    p = new QueueProgress(topic, queueId, Math.max(start, store.minOffset(topic, queueId)));
    p.dirty = true; // persist the starting point, so "latest" means the moment the group first joined
    this.progress.set(key, p);
    return p;
  }

  /** Average allocation: queue i of a topic → i-th subscriber modulo their count, sorted by id. */
  private rebalance(): void {
    const owners = new Map<string, Member>();
    const members = [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    for (const m of members) m.queues = [];
    for (const topic of this.subscribedTopics) {
      const subscribers = members.filter((m) => m.subscriptions.has(topic));
      const queues = this.deps.queueCount(topic) ?? 0;
      for (let q = 0; q < queues; q++) {
        const p = this.progress.get(`${topic}/${q}`);
        if (!p || subscribers.length === 0) continue;
        const owner = subscribers[q % subscribers.length]!;
        owner.queues.push(p);
        owners.set(p.key, owner);
      }
    }
    this.owners = owners;
    for (const m of members) this.wake(m);
  }

  private wakeOwner(key: string): void {
    const owner = this.owners.get(key);
    if (owner) this.wake(owner);
  }

  private wake(m: Member): void {
    const parked = m.waiting.shift();
    if (!parked) return;
    void this.collect(m, parked.max, parked.invisibleMs).then(
      (out) => {
        if (out.length > 0 || !m.alive) {
          clearTimeout(parked.timer);
          parked.resolve(out);
          // Others may be waiting too and there may be more to hand out.
          if (m.waiting.length > 0) this.wake(m);
        } else {
          m.waiting.unshift(parked);
        }
      },
      () => m.waiting.unshift(parked),
    );
  }

  private async collect(m: Member, max: number, invisibleMs: number): Promise<Delivery[]> {
    const out: Delivery[] = [];
    // A rebalance during an await replaces m.queues; keep walking the list we started with.
    const queues = m.queues;
    const n = queues.length;
    const start = m.cursor++;
    for (let i = 0; i < n && out.length < max; i++) {
      const p = queues[(start + i) % n]!;
      if (p.reading) continue;
      if (!p.hasRedeliveries && p.next >= this.deps.store.maxOffset(p.topic, p.queueId)) continue;
      p.reading = true;
      try {
        await this.readInto(p, m, max - out.length, Date.now() + invisibleMs, out);
      } finally {
        p.reading = false;
      }
    }
    if (!m.alive) {
      // The member vanished while we read: nothing reaches it, so everything comes back.
      for (const d of out) this.progress.get(`${d.record.topic}/${d.record.queueId}`)?.release(d.record.queueOffset);
      return [];
    }
    return out;
  }

  private async readInto(p: QueueProgress, m: Member, max: number, deadline: number, out: Delivery[]): Promise<void> {
    const { store } = this.deps;
    for (const offset of p.takeRedeliveries(max)) {
      if (p.done.has(offset) || offset < p.committed) continue;
      const { records } = await store.readQueue(p.topic, p.queueId, offset, 1);
      const record = records[0];
      if (!record) continue;
      out.push({ record, reconsumeTimes: p.lease(offset, m.id, deadline) });
    }
    const room = max - out.length;
    const visible = store.maxOffset(p.topic, p.queueId);
    if (room <= 0 || p.next >= visible) return;
    const filter = m.subscriptions.get(p.topic) ?? parseTagExpression('*');
    const from = p.next;
    const { records, nextOffset } = await store.readQueue(p.topic, p.queueId, from, room, {
      tagHashes: filter.all ? undefined : filter.hashes,
      maxBytes: this.deps.maxPullBytes,
    });
    p.next = Math.max(p.next, nextOffset);
    const delivered = new Set<number>();
    for (const record of records) {
      // The tag hash matched; the real tag confirms it (hash collisions are filtered here).
      if (!matchesTag(filter, record.tag) || p.done.has(record.queueOffset)) continue;
      delivered.add(record.queueOffset);
      out.push({ record, reconsumeTimes: p.lease(record.queueOffset, m.id, deadline) });
    }
    for (let o = from; o < nextOffset; o++) if (!delivered.has(o)) p.markDone(o);
  }
}
