import type { DeadLetterMessage } from '../common/message.js';
import { MessageNotFoundError } from '../common/errors.js';
import { RecordType } from '../storage/index.js';
import type { JsonSublevel, MessageStore, StoredRecord } from '../storage/index.js';
import { dlqTopicOf, retryTopicOf, SystemProperty, userProperties } from '../common/system-properties.js';
import type { TopicManager } from './topic-manager.js';

/**
 * A group's dead-letter queue: topic `%DLQ%<group>` (one queue) holds a NORMAL copy of every
 * message that failed `maxReconsumeTimes` retries, with its original id, tag, keys and properties
 * plus the origin and last failure reason as system properties.
 *
 * What an operator did with each entry lives in level (sublevel `dlq`):
 *
 *   key `f\0<group>`                     value number   every DLQ offset below it is handled (purge)
 *   key `h\0<group>\0<offset, 20 digits>` value { state: 'resent', at }   one handled entry
 *
 * Resending appends a NORMAL copy to `%RETRY%<group>` with reconsumeTimes 0: the group's members
 * subscribe to it, so the message is delivered again under its original topic and id, with a
 * fresh retry count. Operations on one group run one at a time, so an entry is never resent twice.
 */
export type DeadLetter = DeadLetterMessage;

interface Mark {
  state: 'resent';
  at: number;
}

const SCAN_BATCH = 256;

export class DeadLetterService {
  private readonly store: MessageStore;
  private readonly topics: TopicManager;
  private readonly db: JsonSublevel<unknown>;
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(options: { store: MessageStore; topics: TopicManager; db: JsonSublevel<unknown> }) {
    this.store = options.store;
    this.topics = options.topics;
    this.db = options.db;
  }

  /** Appends the dead-letter copy of a failed delivery (a record of the topic or of its retry topic). */
  async bury(group: string, record: StoredRecord, reconsumeTimes: number, reason: string): Promise<void> {
    const topic = dlqTopicOf(group);
    if (!this.topics.get(topic)) await this.topics.create(topic, 1);
    await this.store.append([
      {
        type: RecordType.NORMAL,
        topic,
        queueId: 0,
        msgId: record.msgId,
        ...(record.tag !== undefined ? { tag: record.tag } : {}),
        keys: record.keys,
        properties: { ...withOrigin(record), [SystemProperty.FAILURE_REASON]: reason },
        body: record.body,
        bornTimestamp: record.bornTimestamp,
        reconsumeTimes,
      },
    ]);
  }

  /** Entries not yet resent or purged, oldest first. */
  list(group: string, limit = 1000): Promise<DeadLetter[]> {
    return this.serial(group, () => this.open(group, limit));
  }

  /** Resends one entry (by message id) or all; returns the resent entries. */
  resend(group: string, which: { msgId: string } | 'all'): Promise<DeadLetter[]> {
    return this.serial(group, async () => {
      const open = await this.open(group, Infinity);
      const chosen = which === 'all' ? open : open.filter((d) => d.msgId === which.msgId);
      if (which !== 'all' && chosen.length === 0) {
        throw new MessageNotFoundError(`no dead letter with id ${which.msgId} in group ${group} (already resent or purged?)`, {
          context: { group, msgId: which.msgId },
        });
      }
      if (chosen.length === 0) return [];
      const topic = retryTopicOf(group);
      if (!this.topics.get(topic)) await this.topics.create(topic, 1);
      await this.store.append(
        chosen.map((d) => ({
          type: RecordType.NORMAL,
          topic,
          queueId: 0,
          msgId: d.msgId,
          ...(d.tag !== undefined ? { tag: d.tag } : {}),
          keys: d.keys,
          properties: {
            ...d.properties,
            [SystemProperty.ORIGIN_TOPIC]: d.topic,
            [SystemProperty.ORIGIN_QUEUE]: String(d.queueId),
            [SystemProperty.ORIGIN_OFFSET]: String(d.queueOffset),
          },
          body: d.body,
          bornTimestamp: d.bornTimestamp,
          reconsumeTimes: 0,
        })),
      );
      const at = Date.now();
      const mark: Mark = { state: 'resent', at };
      await this.db.batch(chosen.map((d) => ({ type: 'put' as const, key: markKey(group, d.dlqOffset), value: mark })));
      return chosen;
    });
  }

  /** Marks everything in the DLQ handled; returns how many open entries that discarded. */
  purge(group: string): Promise<number> {
    return this.serial(group, async () => {
      const open = await this.open(group, Infinity);
      const max = this.store.maxOffset(dlqTopicOf(group), 0);
      const marks = await this.db.keys({ gte: markKey(group, 0), lt: markEnd(group) }).all();
      await this.db.batch([{ type: 'put' as const, key: floorKey(group), value: max }, ...marks.map((key) => ({ type: 'del' as const, key }))]);
      return open.length;
    });
  }

  /** How many entries are open, for group status; reads marks only, never the messages. */
  async count(group: string): Promise<number> {
    const { from, max, handled } = await this.window(group);
    return Math.max(0, max - from - handled.size);
  }

  /** The DLQ range not purged, and the handled offsets in it. */
  private async window(group: string): Promise<{ topic: string; from: number; max: number; handled: Set<number> }> {
    const topic = dlqTopicOf(group);
    const max = this.store.maxOffset(topic, 0);
    const floor = ((await this.db.get(floorKey(group))) as number | undefined) ?? 0;
    const from = Math.max(floor, this.store.minOffset(topic, 0));
    const handled = new Set<number>();
    if (from >= max) return { topic, from, max, handled };
    for await (const key of this.db.keys({ gte: markKey(group, from), lt: markEnd(group) })) {
      handled.add(Number(key.slice(key.lastIndexOf('\u0000') + 1)));
    }
    return { topic, from, max, handled };
  }

  private async open(group: string, limit: number): Promise<DeadLetter[]> {
    const window = await this.window(group);
    const { topic, max, handled } = window;
    let { from } = window;
    const out: DeadLetter[] = [];
    while (from < max && out.length < limit) {
      const { records, nextOffset } = await this.store.readQueue(topic, 0, from, SCAN_BATCH);
      for (const r of records) if (!handled.has(r.queueOffset) && out.length < limit) out.push(toDeadLetter(r));
      if (nextOffset <= from) break;
      from = nextOffset;
    }
    return out;
  }

  private serial<T>(group: string, run: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(group) ?? Promise.resolve();
    const next = previous.then(run, run);
    const settled = next.catch(() => undefined);
    this.queues.set(group, settled);
    void settled.then(() => {
      if (this.queues.get(group) === settled) this.queues.delete(group);
    });
    return next;
  }
}

/** Properties of a copy: the record's own, plus where it came from if it is the first copy. */
export function withOrigin(record: StoredRecord): Record<string, string> {
  const props = { ...record.properties };
  delete props[SystemProperty.DELIVER_AT];
  delete props[SystemProperty.FAILURE_REASON];
  if (props[SystemProperty.ORIGIN_TOPIC] === undefined) {
    props[SystemProperty.ORIGIN_TOPIC] = record.topic;
    props[SystemProperty.ORIGIN_QUEUE] = String(record.queueId);
    props[SystemProperty.ORIGIN_OFFSET] = String(record.queueOffset);
  }
  return props;
}

function toDeadLetter(r: StoredRecord): DeadLetter {
  const p = r.properties;
  const d: DeadLetter = {
    msgId: r.msgId,
    topic: p[SystemProperty.ORIGIN_TOPIC] ?? r.topic,
    queueId: Number(p[SystemProperty.ORIGIN_QUEUE] ?? -1),
    queueOffset: Number(p[SystemProperty.ORIGIN_OFFSET] ?? -1),
    dlqOffset: r.queueOffset,
    keys: r.keys,
    properties: userProperties(p),
    reason: p[SystemProperty.FAILURE_REASON] ?? '',
    reconsumeTimes: r.reconsumeTimes,
    bornTimestamp: r.bornTimestamp,
    deadAt: r.storeTimestamp,
    body: r.body,
  };
  if (r.tag !== undefined) d.tag = r.tag;
  return d;
}

function markPrefix(group: string): string {
  return `h\u0000${group}\u0000`;
}

/** Above every mark of the group: `h\0<group>\1` sorts after `h\0<group>\0<digits>`. */
function markEnd(group: string): string {
  return `h\u0000${group}\u0001`;
}

function markKey(group: string, offset: number): string {
  return markPrefix(group) + String(offset).padStart(20, '0');
}

function floorKey(group: string): string {
  return `f\u0000${group}`;
}
