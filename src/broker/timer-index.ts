import type { JsonSublevel, ReleaseTarget } from '../storage/index.js';

/**
 * Storage format of the timer index (level sublevel `timers`): one entry per held DELAYED record
 * not yet released.
 *
 *   key    `<deliverAt, 15 digits>:<physicalOffset, 20 digits>`   so key order is due order
 *   value  { o: physicalOffset, s: size, t: topic, q: queueId, g?: tag }   the release target
 *   key    `~sync`  value: time of the last durability barrier (sorts after every entry)
 *
 * Derived data: the commit log is the truth and `TimerService.rebuild` restores it after a crash.
 */
interface StoredTarget {
  o: number;
  s: number;
  t: string;
  q: number;
  g?: string;
}

export interface TimerEntry {
  key: string;
  deliverAt: number;
  target: ReleaseTarget;
}

const SYNC_KEY = '~sync';

export function timerKey(deliverAt: number, physicalOffset: number): string {
  return `${String(deliverAt).padStart(15, '0')}:${String(physicalOffset).padStart(20, '0')}`;
}

function fromStored(key: string, v: StoredTarget): TimerEntry {
  const target: ReleaseTarget = { physicalOffset: v.o, size: v.s, topic: v.t, queueId: v.q };
  if (v.g !== undefined) target.tag = v.g;
  return { key, deliverAt: Number(key.slice(0, 15)), target };
}

export class TimerIndex {
  private readonly db: JsonSublevel<unknown>;

  constructor(db: JsonSublevel<unknown>) {
    this.db = db;
  }

  async add(entries: readonly { deliverAt: number; target: ReleaseTarget }[]): Promise<void> {
    if (entries.length === 0) return;
    await this.db.batch(
      entries.map(({ deliverAt, target: t }) => {
        const value: StoredTarget = { o: t.physicalOffset, s: t.size, t: t.topic, q: t.queueId };
        if (t.tag !== undefined) value.g = t.tag;
        return { type: 'put' as const, key: timerKey(deliverAt, t.physicalOffset), value };
      }),
    );
  }

  async remove(keys: readonly string[]): Promise<void> {
    if (keys.length > 0) await this.db.batch(keys.map((key) => ({ type: 'del' as const, key })));
  }

  /** Entries due at `now` or earlier, earliest first. */
  async due(now: number, limit: number): Promise<TimerEntry[]> {
    const entries = await this.db.iterator({ lt: timerKey(now + 1, 0), limit }).all();
    return entries.map(([key, value]) => fromStored(key, value as StoredTarget));
  }

  /** The earliest deliverAt held, if any. */
  async earliest(): Promise<number | undefined> {
    const [key] = await this.db.keys({ lt: SYNC_KEY, limit: 1 }).all();
    return key === undefined ? undefined : Number(key.slice(0, 15));
  }

  async count(): Promise<number> {
    let n = 0;
    for await (const _ of this.db.keys({ lt: SYNC_KEY })) n++;
    return n;
  }

  /** Removes the entries of these physical offsets, wherever they are due (one pass, for recovery). */
  async removeOffsets(offsets: ReadonlySet<number>): Promise<number> {
    if (offsets.size === 0) return 0;
    const keys: string[] = [];
    for await (const key of this.db.keys({ lt: SYNC_KEY })) if (offsets.has(Number(key.slice(16)))) keys.push(key);
    await this.remove(keys);
    return keys.length;
  }

  /** A synced write: LevelDB syncs its log up to it, so every earlier write is durable too. */
  async sync(): Promise<void> {
    await this.db.db.batch([{ type: 'put', key: SYNC_KEY, value: Date.now(), sublevel: this.db }] as never, { sync: true });
  }
}
