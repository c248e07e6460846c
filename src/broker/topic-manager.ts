import { crc32 } from 'node:zlib';
import { InvalidArgumentError, TopicNotFoundError } from '../common/errors.js';
import { validateName } from '../common/names.js';
import type { MetadataStore, TopicConfig } from '../storage/index.js';

export const MAX_QUEUES = 1024;

/**
 * Topic configuration (kept in level by MetadataStore) and queue selection for sends. Sending to a
 * missing topic creates it with the default queue count, as RocketMQ does out of the box, unless
 * auto-creation is off.
 */
export class TopicManager {
  private readonly metadata: MetadataStore;
  private readonly autoCreate: boolean;
  private readonly defaultQueues: number;
  private readonly onChanged: (topic: string) => Promise<void>;
  private readonly creating = new Map<string, Promise<TopicConfig>>();
  private readonly roundRobin = new Map<string, number>();

  constructor(options: {
    metadata: MetadataStore;
    autoCreate: boolean;
    defaultQueues: number;
    onChanged: (topic: string) => Promise<void>;
  }) {
    this.metadata = options.metadata;
    this.autoCreate = options.autoCreate;
    this.defaultQueues = options.defaultQueues;
    this.onChanged = options.onChanged;
  }

  get(name: string): TopicConfig | undefined {
    return this.metadata.getTopic(name);
  }

  queueCount(name: string): number | undefined {
    return this.metadata.getTopic(name)?.queues;
  }

  list(): TopicConfig[] {
    return this.metadata.listTopics();
  }

  require(name: string): TopicConfig {
    const config = this.metadata.getTopic(validateName('topic', name));
    if (!config) throw new TopicNotFoundError(`topic ${name} does not exist`, { context: { topic: name } });
    return config;
  }

  /** The topic a send goes to: existing, or auto-created when allowed. */
  async forSend(name: string): Promise<TopicConfig> {
    const config = this.metadata.getTopic(name);
    if (config) return config;
    validateName('topic', name);
    if (!this.autoCreate) {
      throw new TopicNotFoundError(`topic ${name} does not exist and auto-creation is off (create it with: halfmq topic create ${name})`, {
        context: { topic: name },
      });
    }
    return (await this.create(name, this.defaultQueues)).config;
  }

  /**
   * Creates a topic, or grows its queue count; idempotent for the same count. Without a count an
   * existing topic is left as it is and a new one gets the default.
   */
  async create(name: string, requested?: number): Promise<{ config: TopicConfig; created: boolean }> {
    validateName('topic', name);
    const queues = requested ?? this.metadata.getTopic(name)?.queues ?? this.defaultQueues;
    if (!Number.isInteger(queues) || queues < 1 || queues > MAX_QUEUES) {
      throw new InvalidArgumentError(`queue count must be an integer from 1 to ${MAX_QUEUES}, got ${queues}`, { context: { topic: name, queues } });
    }
    const inProgress = this.creating.get(name);
    if (inProgress) return { config: await inProgress, created: false };
    const existing = this.metadata.getTopic(name);
    if (existing && existing.queues >= queues) {
      if (existing.queues > queues) {
        throw new InvalidArgumentError(`topic ${name} has ${existing.queues} queues; queues cannot be removed`, {
          context: { topic: name, queues: existing.queues, requested: queues },
        });
      }
      return { config: existing, created: false };
    }
    const config: TopicConfig = { name, queues, createdAt: existing?.createdAt ?? Date.now() };
    const write = this.metadata.putTopic(config).then(() => config);
    this.creating.set(name, write);
    try {
      await write;
    } finally {
      this.creating.delete(name);
    }
    await this.onChanged(name);
    return { config, created: existing === undefined };
  }

  /** The same sharding key always maps to the same queue; otherwise spread round robin. */
  selectQueue(config: TopicConfig, shardingKey: string | undefined): number {
    if (shardingKey !== undefined && shardingKey !== '') return crc32(shardingKey) % config.queues;
    const n = this.roundRobin.get(config.name) ?? 0;
    this.roundRobin.set(config.name, n + 1);
    return n % config.queues;
  }
}
