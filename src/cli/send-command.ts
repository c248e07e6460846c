import { Command } from 'commander';
import { InvalidArgumentError } from '../common/errors.js';
import type { Message } from '../common/message.js';
import { Producer } from '../client/producer.js';
import { validateMessage } from '../client/message-convert.js';
import { CLI_CONNECT_TIMEOUT_MS, collect, nonNegativeInt, positiveInt, serverOption } from './options.js';
import type { CliIo } from './output.js';

/** Sends in flight at once with --count: enough to fill the broker's group commit, bounded memory. */
const MAX_IN_FLIGHT = 256;

interface SendFlags {
  topic: string;
  body: string;
  key?: string[];
  tag?: string;
  property?: string[];
  shardingKey?: string;
  delayMs?: number;
  deliverAt?: number;
  count?: number;
  server: string;
}

/** `halfmq send` */
export function sendCommand(io: CliIo): Command {
  return new Command('send')
    .description('send messages and print each message id, one per line, in send order')
    .requiredOption('--topic <topic>', 'topic to send to')
    .requiredOption('--body <text>', 'message body (UTF-8)')
    .option('--key <key>', 'message key, for lookup (repeatable)', collect)
    .option('--tag <tag>', 'message tag, for consumer filtering')
    .option('--property <key=value...>', 'user property (repeatable)')
    .option('--sharding-key <key>', 'messages with the same sharding key go to the same queue')
    .option('--delay-ms <ms>', 'deliver this many ms after the broker stores it (durable across restarts)', nonNegativeInt)
    .option('--deliver-at <ms>', 'deliver at this time, in ms since the epoch (broker clock)', nonNegativeInt)
    .option('--count <n>', `send N messages with bodies TEXT-0 … TEXT-(N-1), up to ${MAX_IN_FLIGHT} in flight`, positiveInt)
    .addOption(serverOption(io.env))
    .action(async (flags: SendFlags) => {
      const template = buildMessage(flags);
      validateMessage(template); // before connecting: a bad topic name is a usage error, not a network one
      const producer = new Producer({ endpoints: flags.server, connectTimeoutMs: CLI_CONNECT_TIMEOUT_MS });
      try {
        await producer.start();
        if (flags.count === undefined) {
          io.out((await producer.send(template)).msgId);
        } else {
          await sendMany(producer, template, flags.count, (id) => io.out(id));
        }
      } finally {
        await producer.shutdown();
      }
    });
}

export function buildMessage(flags: Pick<SendFlags, 'topic' | 'body' | 'key' | 'tag' | 'property' | 'shardingKey' | 'delayMs' | 'deliverAt'>): Message {
  const message: Message = { topic: flags.topic, body: flags.body };
  if (flags.tag !== undefined) message.tag = flags.tag;
  if (flags.key !== undefined) message.keys = flags.key;
  if (flags.shardingKey !== undefined) message.shardingKey = flags.shardingKey;
  if (flags.delayMs !== undefined) message.delayMs = flags.delayMs;
  if (flags.deliverAt !== undefined) message.deliverAt = flags.deliverAt;
  if (flags.property !== undefined) message.properties = parseProperties(flags.property);
  return message;
}

export function parseProperties(pairs: string[]): Record<string, string> {
  const properties: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`--property expects key=value, got "${pair}"`);
    properties[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return properties;
}

/**
 * Sends `count` copies of `template` (bodies suffixed -i) with at most MAX_IN_FLIGHT outstanding,
 * printing ids in send order as soon as every earlier one is known. Stops at the first failure.
 */
async function sendMany(producer: Producer, template: Message, count: number, print: (id: string) => void): Promise<void> {
  const ids: (string | undefined)[] = new Array(count);
  let next = 0;
  let printed = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (next < count && failure === undefined) {
      const i = next++;
      try {
        ids[i] = (await producer.send({ ...template, body: `${template.body as string}-${i}` })).msgId;
      } catch (err) {
        failure ??= err;
        return;
      }
      while (printed < count && ids[printed] !== undefined) print(ids[printed++]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(MAX_IN_FLIGHT, count) }, worker));
  if (failure !== undefined) throw failure;
}
