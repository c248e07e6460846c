import { Command } from 'commander';
import { Admin } from '../client/admin.js';
import { CLI_CONNECT_TIMEOUT_MS, positiveInt, serverOption } from './options.js';
import { formatTable, toJson } from './output.js';
import type { CliIo } from './output.js';

/** `halfmq topic create|list` */
export function topicCommand(io: CliIo): Command {
  const topic = new Command('topic').description('create and list topics');

  topic
    .command('create')
    .description('create a topic (succeeds, saying so, when it already exists)')
    .argument('<name>', 'topic name: 1-127 characters from A-Z a-z 0-9 _ - %')
    .option('--queues <n>', "number of queues (default: the broker's --default-queues)", positiveInt)
    .addOption(serverOption(io.env))
    .action(async (name: string, opts: { queues?: number; server: string }) => {
      await withAdmin(opts.server, async (admin) => {
        const { topic: info, created } = await admin.createTopic(name, opts.queues !== undefined ? { queues: opts.queues } : {});
        io.out(created ? `created topic ${info.name} with ${info.queues} queues` : `topic ${info.name} already exists with ${info.queues} queues`);
      });
    });

  topic
    .command('list')
    .description('list topics: name, queues, retained messages, creation time')
    .option('--json', 'print a JSON array of {name, queues, messages, createdAt}')
    .addOption(serverOption(io.env))
    .action(async (opts: { json?: boolean; server: string }) => {
      await withAdmin(opts.server, async (admin) => {
        const topics = (await admin.listTopics()).sort((a, b) => a.name.localeCompare(b.name));
        if (opts.json) return io.out(toJson(topics));
        const rows = topics.map((t) => [t.name, t.queues, t.messages, new Date(t.createdAt).toISOString()]);
        for (const line of formatTable(['NAME', 'QUEUES', 'MESSAGES', 'CREATED'], rows)) io.out(line);
      });
    });

  return topic;
}

/** Runs `fn` with a connected Admin and always shuts it down, so the command exits promptly. */
export async function withAdmin<T>(server: string, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin({ endpoints: server, connectTimeoutMs: CLI_CONNECT_TIMEOUT_MS });
  try {
    return await fn(admin);
  } finally {
    await admin.shutdown();
  }
}
