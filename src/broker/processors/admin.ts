import { validateName } from '../../common/names.js';
import type { CreateTopicResponse, GroupStatus, ListGroupsResponse, ListTopicsResponse, TopicInfo } from '../../protocol/commands.js';
import type { TopicConfig } from '../../storage/index.js';
import type { BrokerContext, Processor } from '../context.js';
import { asObject, optInt } from '../validate.js';
import { MAX_QUEUES } from '../topic-manager.js';

function topicInfo(ctx: BrokerContext, config: TopicConfig): TopicInfo {
  let messages = 0;
  for (let q = 0; q < config.queues; q++) messages += ctx.store.maxOffset(config.name, q) - ctx.store.minOffset(config.name, q);
  return { name: config.name, queues: config.queues, createdAt: config.createdAt, messages };
}

/** CREATE_TOPIC {name, queues?} → {topic, created}; idempotent, and may grow the queue count. */
export const createTopic: Processor = async (ctx, _session, { payload }) => {
  const d = asObject(payload, 'CREATE_TOPIC payload');
  const name = validateName('topic', d.name);
  const queues = d.queues === undefined || d.queues === null ? undefined : optInt(d, 'queues', 1, MAX_QUEUES, 0);
  const { config, created } = await ctx.topics.create(name, queues);
  if (created) ctx.log('info', `topic ${name} created with ${config.queues} queues`);
  const reply: CreateTopicResponse = { topic: topicInfo(ctx, config), created };
  return { payload: reply };
};

export const listTopics: Processor = (ctx) => {
  const reply: ListTopicsResponse = { topics: ctx.topics.list().map((t) => topicInfo(ctx, t)) };
  return { payload: reply };
};

export const listGroups: Processor = async (ctx) => {
  const reply: ListGroupsResponse = { groups: await ctx.groups.listGroups() };
  return { payload: reply };
};

/** GROUP_STATUS {group} → members, their queues, and committed offset + lag per queue. */
export const groupStatus: Processor = async (ctx, _session, { payload }) => {
  const name = validateName('group', asObject(payload, 'GROUP_STATUS payload').group);
  const group = await ctx.groups.get(name);
  const stored = await ctx.metadata.loadOffsets(name);
  const status: GroupStatus = {
    group: name,
    members: [...group.members.values()].map((m) => ({
      memberId: m.id,
      clientId: m.clientId,
      address: m.address,
      subscriptions: Object.fromEntries([...m.subscriptions].map(([t, f]) => [t, f.expression])),
      queues: m.queues.map((p) => p.key),
    })),
    queues: [],
    totalLag: 0,
    deadLetters: await ctx.deadLetters.count(name),
  };
  const keys = new Set([...stored.keys(), ...group.progress.keys()]);
  for (const key of [...keys].sort()) {
    const slash = key.lastIndexOf('/');
    const topic = key.slice(0, slash);
    const queueId = Number(key.slice(slash + 1));
    const maxOffset = ctx.store.maxOffset(topic, queueId);
    const p = group.progress.get(key);
    const committedOffset = p?.committed ?? stored.get(key) ?? 0;
    const lag = p ? p.lag(maxOffset) : Math.max(0, maxOffset - committedOffset);
    status.queues.push({ topic, queueId, committedOffset, maxOffset, lag, inflight: p?.inflight.size ?? 0, owner: group.ownerOf(key)?.id });
    status.totalLag += lag;
  }
  return { payload: status };
};
