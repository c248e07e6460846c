import { Command, Option } from 'commander';
import { InvalidArgumentError as CommanderInvalidArgument } from 'commander';
import { TimeoutError } from '../common/errors.js';
import type { ReceivedMessage } from '../common/message.js';
import { SimpleConsumer } from '../client/simple-consumer.js';
import type { StartFrom } from '../client/index.js';
import { CLI_CONNECT_TIMEOUT_MS, nonNegativeInt, positiveInt, serverOption } from './options.js';
import { toJson } from './output.js';
import type { CliIo } from './output.js';

const BATCH = 64;
/** The broker holds a PULL at most this long; longer idle timeouts are covered by several pulls. */
const MAX_WAIT_MS = 60_000;
const DEFAULT_TIMEOUT_MS = 5_000;

interface ConsumeFlags {
  topic: string;
  group: string;
  tag: string;
  count?: number;
  timeoutMs: number;
  json?: boolean;
  startFrom?: StartFrom;
  server: string;
}

/** `halfmq consume` */
export function consumeCommand(io: CliIo): Command {
  return new Command('consume')
    .description('receive messages as a member of a consumer group, print them, and ack what was printed')
    .requiredOption('--topic <topic>', 'topic to consume')
    .requiredOption('--group <group>', 'consumer group; a later run of the same group continues where this one stopped')
    .option('--tag <expr>', 'tag filter: * or "tagA || tagB"', '*')
    .option('--count <n>', 'stop after N messages; exit 1 if they do not arrive in time', positiveInt)
    .option('--timeout-ms <ms>', 'give up after this long without a new message', nonNegativeInt, DEFAULT_TIMEOUT_MS)
    .option('--json', 'one JSON object per line: msgId, topic, queueId, queueOffset, tag (null when none), keys, properties, body (UTF-8), bornTimestamp, storeTimestamp, reconsumeTimes')
    .addOption(new Option('--start-from <where>', 'where a new group starts: earliest, latest or a timestamp in ms').argParser(parseStartFrom))
    .addOption(serverOption(io.env))
    .addHelpText(
      'after',
      '\nWith --count N: exits 0 once N messages were printed and acked; exits 1 if --timeout-ms passes\n' +
        'without a new message before that. Without --count: prints messages until --timeout-ms passes\n' +
        'without a new one (default 5000), then exits 0, also when there were none.\n' +
        'Only printed messages are acked (after printing); never more than N are taken.',
    )
    .action(async (flags: ConsumeFlags) => {
      const consumer = new SimpleConsumer({
        endpoints: flags.server,
        group: flags.group,
        subscriptions: { [flags.topic]: flags.tag },
        connectTimeoutMs: CLI_CONNECT_TIMEOUT_MS,
        ...(flags.startFrom !== undefined ? { startFrom: flags.startFrom } : {}),
      });
      try {
        await consumer.start();
        const received = await consumeLoop(consumer, flags, (m) => io.out(flags.json ? toJson(toJsonLine(m)) : toTextLine(m)));
        if (flags.count !== undefined && received < flags.count) {
          throw new TimeoutError(`timed out: no new message for ${flags.timeoutMs} ms, received ${received} of ${flags.count}`);
        }
      } finally {
        await consumer.shutdown();
      }
    });
}

async function consumeLoop(consumer: SimpleConsumer, flags: ConsumeFlags, print: (m: ReceivedMessage) => void): Promise<number> {
  let received = 0;
  let idleDeadline = Date.now() + flags.timeoutMs;
  while (flags.count === undefined || received < flags.count) {
    const remaining = idleDeadline - Date.now();
    if (remaining <= 0) break;
    const max = flags.count === undefined ? BATCH : Math.min(BATCH, flags.count - received);
    const messages = await consumer.receive(max, Math.min(remaining, MAX_WAIT_MS));
    // Never more than asked for; should the broker send extra, they stay un-acked and come back
    // after their lease, so a later run still sees them.
    const taken = messages.slice(0, max);
    if (taken.length === 0) continue;
    for (const m of taken) print(m);
    await consumer.ack(taken);
    received += taken.length;
    idleDeadline = Date.now() + flags.timeoutMs;
  }
  return received;
}

export function toJsonLine(m: ReceivedMessage): Record<string, unknown> {
  return {
    msgId: m.msgId,
    topic: m.topic,
    queueId: m.queueId,
    queueOffset: m.queueOffset,
    tag: m.tag ?? null,
    keys: m.keys,
    properties: m.properties,
    body: m.body.toString('utf8'),
    bornTimestamp: m.bornTimestamp,
    storeTimestamp: m.storeTimestamp,
    reconsumeTimes: m.reconsumeTimes,
  };
}

export function toTextLine(m: ReceivedMessage): string {
  const body = m.body.toString('utf8');
  const parts = [m.msgId, `${m.topic}/${m.queueId}@${m.queueOffset}`, `tag=${m.tag ?? '-'}`, `keys=${m.keys.join(',') || '-'}`];
  const props = Object.entries(m.properties);
  if (props.length > 0) parts.push(`props=${props.map(([k, v]) => `${k}=${v}`).join(',')}`);
  if (m.reconsumeTimes > 0) parts.push(`reconsumed=${m.reconsumeTimes}`);
  // Keep one line per message: a body with line breaks is printed JSON-quoted.
  parts.push(/[\r\n]/.test(body) ? JSON.stringify(body) : body);
  return parts.join('  ');
}

function parseStartFrom(value: string): StartFrom {
  if (value === 'earliest' || value === 'latest') return value;
  if (/^\d+$/.test(value)) return Number(value);
  throw new CommanderInvalidArgument('must be earliest, latest or a timestamp in ms');
}
