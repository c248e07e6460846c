import type { MessageStore, MetadataStore } from '../storage/index.js';
import { ConsumerGroup } from './consumer-group.js';
import type { DeadLetterService } from './dead-letter.js';
import type { Logger } from './logger.js';
import type { RetryService } from './retry-service.js';

/**
 * Owns every consumer group the broker has seen: loads a group's committed offsets on first use,
 * persists offsets that moved (batched, every `offsetFlushMs`), and sweeps expired leases.
 */
export interface GroupManagerOptions {
  store: MessageStore;
  metadata: MetadataStore;
  queueCount: (topic: string) => number | undefined;
  log: Logger;
  maxPullBytes: number;
  retries: RetryService;
  deadLetters: DeadLetterService;
  offsetFlushMs?: number;
  leaseSweepMs?: number;
}

export class GroupManager {
  private readonly groups = new Map<string, ConsumerGroup>();
  private readonly loading = new Map<string, Promise<ConsumerGroup>>();
  private readonly options: GroupManagerOptions;
  private flushTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(options: GroupManagerOptions) {
    this.options = options;
  }

  start(): void {
    this.flushTimer = setInterval(() => void this.flushOffsets(), this.options.offsetFlushMs ?? 200);
    this.sweepTimer = setInterval(() => {
      const now = Date.now();
      for (const g of this.groups.values()) g.expireLeases(now);
    }, this.options.leaseSweepMs ?? 100);
  }

  peek(name: string): ConsumerGroup | undefined {
    return this.groups.get(name);
  }

  async get(name: string): Promise<ConsumerGroup> {
    const existing = this.groups.get(name);
    if (existing) return existing;
    const loading = this.loading.get(name);
    if (loading) return loading;
    const pending = this.options.metadata.loadOffsets(name).then((storedOffsets: Map<string, number>) => {
      const group = new ConsumerGroup(name, {
        store: this.options.store,
        queueCount: this.options.queueCount,
        storedOffsets,
        maxPullBytes: this.options.maxPullBytes,
        retries: this.options.retries,
        deadLetters: this.options.deadLetters,
        log: this.options.log,
      });
      this.groups.set(name, group);
      this.loading.delete(name);
      return group;
    });
    this.loading.set(name, pending);
    return pending;
  }

  async listGroups(): Promise<string[]> {
    const names = new Set([...(await this.options.metadata.listGroups()), ...this.groups.keys()]);
    return [...names].sort();
  }

  onDispatch(topic: string, queueId: number): void {
    for (const g of this.groups.values()) g.onDispatch(topic, queueId);
  }

  async onTopicChanged(topic: string): Promise<void> {
    for (const g of this.groups.values()) await g.refreshTopic(topic);
  }

  /** Persists every committed offset that moved, in one batch; runs one at a time. */
  flushOffsets(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      const entries: { group: string; topic: string; queueId: number; offset: number }[] = [];
      for (const g of this.groups.values()) {
        for (const p of g.progress.values()) {
          if (!p.dirty) continue;
          p.dirty = false;
          entries.push({ group: g.name, topic: p.topic, queueId: p.queueId, offset: p.committed });
        }
      }
      if (entries.length === 0) return;
      try {
        await this.options.metadata.commitOffsets(entries);
      } catch (err) {
        this.options.log('error', `could not persist consumer offsets: ${(err as Error).message}`);
        for (const e of entries) {
          const p = this.groups.get(e.group)?.progress.get(`${e.topic}/${e.queueId}`);
          if (p) p.dirty = true;
        }
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.flushTimer);
    clearInterval(this.sweepTimer);
    for (const g of this.groups.values()) g.close();
    await this.flushOffsets();
  }
}
