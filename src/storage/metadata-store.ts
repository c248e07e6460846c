import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { IllegalStateError, InvalidArgumentError, StorageError } from '../common/errors.js';

/**
 * Small keyed state in LevelDB at `<dataDir>/meta`, values as JSON. Layout (sublevels):
 *
 *   topics   key `<topic>`                             value TopicConfig
 *   offsets  key `<group>\u0000<topic>/<queueId>`       value number (committed consumer offset)
 *   <name>   whatever a later feature puts there, via sublevel(name)
 *
 * Topics are cached in memory at open (the broker reads them on every request); offsets are not.
 */
export interface TopicConfig {
  name: string;
  queues: number;
  createdAt: number;
}

export interface OffsetCommit {
  group: string;
  topic: string;
  queueId: number;
  offset: number;
}

type Root = Level<string, unknown>;

function jsonSublevel<V>(db: Root, name: string) {
  return db.sublevel<string, V>(name, { valueEncoding: 'json' });
}

/** A namespaced key-value store with string keys and JSON values (an abstract-level sublevel). */
export type JsonSublevel<V = unknown> = ReturnType<typeof jsonSublevel<V>>;

const RESERVED = new Set(['topics', 'offsets']);
const SUBLEVEL_NAME = /^[a-z][a-z0-9-]{0,63}$/;
const GROUP_END = '\u0000';

export class MetadataStore {
  private readonly db: Root;
  private readonly topics: JsonSublevel<TopicConfig>;
  private readonly offsets: JsonSublevel<number>;
  private readonly topicCache = new Map<string, TopicConfig>();
  private state: 'open' | 'closing' | 'closed' = 'open';

  private constructor(db: Root) {
    this.db = db;
    this.topics = jsonSublevel<TopicConfig>(db, 'topics');
    this.offsets = jsonSublevel<number>(db, 'offsets');
  }

  static async open(dataDir: string): Promise<MetadataStore> {
    const location = join(dataDir, 'meta');
    await mkdir(location, { recursive: true });
    const db: Root = new Level<string, unknown>(location, { valueEncoding: 'json' });
    try {
      await db.open();
    } catch (cause) {
      throw new StorageError(`cannot open metadata store at ${location}`, { cause, context: { location } });
    }
    const store = new MetadataStore(db);
    for await (const [name, config] of store.topics.iterator()) store.topicCache.set(name, config);
    return store;
  }

  private assertOpen(operation: string): void {
    if (this.state !== 'open') throw new IllegalStateError(`metadata store is ${this.state}; ${operation} refused`, { context: { operation } });
  }

  getTopic(name: string): TopicConfig | undefined {
    this.assertOpen('getTopic');
    return this.topicCache.get(name);
  }

  /** Sorted by name. */
  listTopics(): TopicConfig[] {
    this.assertOpen('listTopics');
    return [...this.topicCache.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async putTopic(config: TopicConfig): Promise<void> {
    this.assertOpen('putTopic');
    if (typeof config.name !== 'string' || config.name === '' || !Number.isSafeInteger(config.queues) || config.queues < 1) {
      throw new InvalidArgumentError('topic config needs a name and a positive queue count', { context: { ...config } });
    }
    const copy = { name: config.name, queues: config.queues, createdAt: config.createdAt };
    await this.topics.put(copy.name, copy);
    this.topicCache.set(copy.name, copy);
  }

  /** Deletes the topic config and every group's committed offsets for it, in one batch. */
  async deleteTopic(name: string): Promise<void> {
    this.assertOpen('deleteTopic');
    const ops: { type: 'del'; key: string }[] = [];
    for await (const key of this.offsets.keys()) {
      const rest = key.slice(key.indexOf(GROUP_END) + 1);
      if (rest.slice(0, rest.lastIndexOf('/')) === name) ops.push({ type: 'del', key });
    }
    await this.db.batch([
      { type: 'del', key: name, sublevel: this.topics },
      ...ops.map((op) => ({ ...op, sublevel: this.offsets })),
    ]);
    this.topicCache.delete(name);
  }

  /** Committed offsets of a group, keyed `${topic}/${queueId}`. */
  async loadOffsets(group: string): Promise<Map<string, number>> {
    this.assertOpen('loadOffsets');
    checkGroup(group);
    const out = new Map<string, number>();
    const prefix = group + GROUP_END;
    for await (const [key, offset] of this.offsets.iterator({ gte: prefix, lt: group + '\u0001' })) {
      out.set(key.slice(prefix.length), offset);
    }
    return out;
  }

  /** Every group with at least one committed offset, sorted. */
  async listGroups(): Promise<string[]> {
    this.assertOpen('listGroups');
    const groups: string[] = [];
    let gte = '';
    for (;;) {
      // One seek per group rather than a walk over every offset.
      const [key] = await this.offsets.keys({ gte, limit: 1 }).all();
      if (key === undefined) return groups;
      const group = key.slice(0, key.indexOf(GROUP_END));
      groups.push(group);
      gte = group + '\u0001';
    }
  }

  async commitOffsets(entries: OffsetCommit[]): Promise<void> {
    this.assertOpen('commitOffsets');
    if (entries.length === 0) return;
    for (const e of entries) {
      checkGroup(e.group);
      if (!Number.isSafeInteger(e.offset) || e.offset < 0) throw new InvalidArgumentError('offset must be a non-negative integer', { context: { ...e } });
    }
    await this.offsets.batch(entries.map((e) => ({ type: 'put' as const, key: `${e.group}${GROUP_END}${e.topic}/${e.queueId}`, value: e.offset })));
  }

  /**
   * A namespaced store with JSON values for later features (transaction state, timers). Names are
   * lower-case `[a-z][a-z0-9-]*`; `topics` and `offsets` are taken. Valid until close().
   */
  sublevel<V = unknown>(name: string): JsonSublevel<V> {
    this.assertOpen('sublevel');
    if (!SUBLEVEL_NAME.test(name) || RESERVED.has(name)) throw new InvalidArgumentError(`invalid or reserved sublevel name '${name}'`);
    return jsonSublevel<V>(this.db, name);
  }

  async close(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'closing';
    try {
      await this.db.close();
    } finally {
      this.state = 'closed';
    }
  }
}

function checkGroup(group: string): void {
  if (typeof group !== 'string' || group === '' || group.includes(GROUP_END)) {
    throw new InvalidArgumentError('consumer group must be a non-empty string without NUL', { context: { group } });
  }
}
