import { recordReconsumeTimes, recordTag } from '../common/record-codec.js';
import { matchesTag, parseTagExpression } from '../common/tags.js';
import type { TagFilter } from '../common/tags.js';
import type { StartFrom } from '../protocol/commands.js';
import type { MessageStore, QueueRecord } from '../storage/index.js';
import { QueueProgress } from './queue-progress.js';
import type { Lease } from './queue-progress.js';
import { DEFAULT_MAX_RECONSUME_TIMES } from './retry-policy.js';
import type { RetryService } from './retry-service.js';
import type { DeadLetterService } from './dead-letter.js';
import type { Logger } from './logger.js';

/**
 * One consumer group in clustering mode: each message goes to one member. The broker, not the
 * clients, assigns queues to live members (so two clients can never disagree about who owns a
 * queue) and tracks every delivery until it is acked.
 *
 * A failed delivery (NACK, or a lease that ran out) goes one of two ways:
 *   concurrent groups  a delayed copy goes to the group's retry topic (RetryService) and the offset
 *                      is done: nothing behind it waits.
 *   in place           orderly groups, and broadcast members (a group of one, see PushConsumer):
 *                      the offset stays in flight until its retry delay has passed, then comes
 *                      again. An orderly queue hands out nothing else while one of its messages
 *                      is in flight, so a failing message blocks only its own queue, and a queue
 *                      that moves to a new owner waits for the old owner's in-flight message.
 * Past maxReconsumeTimes either way ends in the dead-letter queue.
 */
export interface GroupSettings {
  orderly: boolean;
  broadcast: boolean;
  /** failures retry in place rather than through the retry topic */
  inPlaceRetry: boolean;
  maxReconsumeTimes: number;
}
export interface Member {
  readonly id: string;
  readonly clientId: string;
  readonly address: string;
  readonly subscriptions: Map<string, TagFilter>;
  queues: QueueProgress[];
  /** round-robin start for the next pull, so one busy queue does not starve the others */
  cursor: number;
  waiting: ParkedPull[];
  /** a wake-up came while no pull was parked */
  missedWake: boolean;
  alive: boolean;
}

/** A message handed out: its record as stored (not decoded, not yet checked) and its position. */
export interface Delivery {
  topic: string;
  queueId: number;
  queueOffset: number;
  physicalOffset: number;
  bytes: Buffer;
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
  retries: RetryService;
  deadLetters: DeadLetterService;
  log: Logger;
}

export class ConsumerGroup {
  readonly name: string;
  readonly members = new Map<string, Member>();
  readonly progress = new Map<string, QueueProgress>();
  private readonly deps: ConsumerGroupDeps;
  private owners = new Map<string, Member>();
  /** set by the latest JOIN: members of one group are expected to agree */
  settings: GroupSettings = { orderly: false, broadcast: false, inPlaceRetry: false, maxReconsumeTimes: DEFAULT_MAX_RECONSUME_TIMES };

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
    settings?: GroupSettings,
  ): Promise<Member> {
    if (settings) this.settings = settings;
    const subs = new Map<string, TagFilter>();
    for (const [topic, expr] of Object.entries(subscriptions)) {
      subs.set(topic, parseTagExpression(expr));
      const queues = this.deps.queueCount(topic) ?? 0;
      for (let q = 0; q < queues; q++) await this.ensureProgress(topic, q, startFrom);
    }
    const m: Member = { ...member, subscriptions: subs, queues: [], cursor: 0, waiting: [], missedWake: false, alive: true };
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
    let out: Delivery[];
    do {
      // A wake-up while we collect (an ack processed between our awaits) finds no parked pull; it
      // is remembered here and means "look again" rather than being lost until the poll times out.
      m.missedWake = false;
      out = await this.collect(m, max, invisibleMs);
      if (out.length > 0 || waitMs <= 0 || !m.alive) return out;
    } while (m.missedWake);
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

  ack(topic: string, queueId: number, offsets: readonly number[]): void {
    const p = this.progress.get(`${topic}/${queueId}`);
    if (!p) return;
    for (const offset of offsets) p.markDone(offset);
    // An orderly queue was blocked on this message; its next one may go out now.
    if (this.settings.orderly) this.wakeOwner(p.key);
  }

  /**
   * "Not consumed": retried after the schedule's delay (see the class comment). Resolves once the
   * retry or dead-letter copy is stored. A NACK of an offset not in flight (late, or repeated) is
   * ignored: that delivery already came back.
   */
  async nack(topic: string, queueId: number, offset: number, reason: string): Promise<void> {
    const p = this.progress.get(`${topic}/${queueId}`);
    const lease = p?.inflight.get(offset);
    if (!p || !lease) return;
    const { inPlaceRetry, maxReconsumeTimes } = this.settings;
    if (inPlaceRetry && lease.reconsumeTimes + 1 <= maxReconsumeTimes) {
      lease.deadline = Date.now() + this.deps.retries.delayAfter(lease.reconsumeTimes);
      return;
    }
    await this.fail(p, offset, reason);
  }

  /** Handles expired leases: a failure in concurrent groups, a plain redelivery in place. */
  expireLeases(now: number): void {
    for (const p of this.progress.values()) {
      if (p.inflight.size === 0) continue;
      if (this.settings.inPlaceRetry) {
        if (p.releaseExpired(now) > 0) this.wakeOwner(p.key);
        continue;
      }
      for (const offset of p.expired(now)) void this.fail(p, offset, 'lease expired before an ack');
    }
  }

  /**
   * Moves a failed delivery to the retry topic (or the DLQ) and marks its offset done. While that
   * append runs the offset is detached, so neither a second failure nor a redelivery can race it;
   * if the append fails the offset is redelivered in place rather than lost.
   */
  private async fail(p: QueueProgress, offset: number, reason: string): Promise<void> {
    const lease = p.detach(offset);
    if (!lease) return;
    try {
      const { records } = await this.deps.store.readQueue(p.topic, p.queueId, offset, 1);
      const record = records[0];
      if (record) {
        if (this.settings.inPlaceRetry) await this.deps.deadLetters.bury(this.name, record, lease.reconsumeTimes, reason);
        else await this.deps.retries.retryLater(this.name, record, lease.reconsumeTimes, this.settings.maxReconsumeTimes, reason);
      }
      p.markDone(offset);
      this.wakeOwner(p.key);
    } catch (err) {
      this.deps.log('error', `group ${this.name}: could not schedule the retry of ${p.key}@${offset}, redelivering in place: ${(err as Error).message}`);
      this.reattach(p, offset, lease);
    }
  }

  private reattach(p: QueueProgress, offset: number, lease: Lease): void {
    p.reattach(offset, lease);
    this.wakeOwner(p.key);
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
    if (!parked) {
      m.missedWake = true;
      return;
    }
    m.missedWake = false;
    void this.collect(m, parked.max, parked.invisibleMs).then(
      (out) => {
        if (out.length > 0 || !m.alive) {
          clearTimeout(parked.timer);
          parked.resolve(out);
          // Others may be waiting too and there may be more to hand out.
          if (m.waiting.length > 0) this.wake(m);
        } else {
          m.waiting.unshift(parked);
          if (m.missedWake) this.wake(m);
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
    const { orderly } = this.settings;
    for (let i = 0; i < n && out.length < max; i++) {
      const p = queues[(start + i) % n]!;
      if (p.reading) continue;
      // Orderly: one message of a queue at a time, whoever holds it (see the class comment).
      if (orderly && p.inflight.size > 0) continue;
      if (!p.hasRedeliveries && p.next >= this.deps.store.maxOffset(p.topic, p.queueId)) continue;
      p.reading = true;
      try {
        await this.readInto(p, m, orderly ? 1 : max - out.length, Date.now() + invisibleMs, out);
      } finally {
        p.reading = false;
      }
    }
    if (!m.alive) {
      // The member vanished while we read: nothing reaches it, so everything comes back.
      for (const d of out) this.progress.get(`${d.topic}/${d.queueId}`)?.release(d.queueOffset);
      return [];
    }
    return out;
  }

  /** Appends up to `max` deliveries of queue `p` to `out` (which may hold other queues' already). */
  private async readInto(p: QueueProgress, m: Member, max: number, deadline: number, out: Delivery[]): Promise<void> {
    const { store } = this.deps;
    const { topic, queueId } = p;
    const deliver = (r: QueueRecord): void => {
      const reconsumeTimes = p.lease(r.queueOffset, m.id, deadline, recordReconsumeTimes(r.bytes));
      out.push({ topic, queueId, queueOffset: r.queueOffset, physicalOffset: r.physicalOffset, bytes: r.bytes, reconsumeTimes });
    };
    const before = out.length;
    for (const offset of p.takeRedeliveries(max)) {
      if (p.done.has(offset) || offset < p.committed) continue;
      const { records } = await store.readQueueRecords(topic, queueId, offset, 1);
      if (records[0]) deliver(records[0]);
    }
    const room = max - (out.length - before);
    const visible = store.maxOffset(topic, queueId);
    if (room <= 0 || p.next >= visible) return;
    const filter = m.subscriptions.get(topic) ?? parseTagExpression('*');
    const from = p.next;
    const { records, nextOffset } = await store.readQueueRecords(topic, queueId, from, room, {
      tagHashes: filter.all ? undefined : filter.hashes,
      maxBytes: this.deps.maxPullBytes,
    });
    p.next = Math.max(p.next, nextOffset);
    // Every scanned offset not delivered is done: filtered out by the store (a gap between the
    // records, which come in offset order), by the real tag, or acked already.
    let o = from;
    for (const record of records) {
      for (; o < record.queueOffset; o++) p.markDone(o);
      o = record.queueOffset + 1;
      // The tag hash matched; the real tag confirms it (hash collisions are filtered here).
      if ((!filter.all && !matchesTag(filter, recordTag(record.bytes))) || p.done.has(record.queueOffset)) p.markDone(record.queueOffset);
      else deliver(record);
    }
    for (; o < nextOffset; o++) p.markDone(o);
  }
}
