import { Command } from 'commander';
import type { StoredMessage } from '../client/admin.js';
import { positiveInt, serverOption } from './options.js';
import { toJson } from './output.js';
import type { CliIo } from './output.js';
import { withAdmin } from './topic-command.js';

/**
 * `halfmq message get --id ID` and `halfmq message find --topic T --key K`: stored messages looked
 * up by id or key. One line per message:
 *   text   msgId  topic/queueId@queueOffset  tag=..  keys=..  [props=..]  [deliverAt=ISO]  body
 *   --json {msgId, topic, queueId, queueOffset, tag (null when none), keys, properties, body (UTF-8),
 *           bornTimestamp, storeTimestamp, deliverAt (null unless delayed)}
 * queueOffset is -1 for a delayed message (its queue position is given when it is delivered).
 * `get` of an unknown id exits 1 with MESSAGE_NOT_FOUND; `find` with no match prints nothing.
 */
export function messageCommand(io: CliIo): Command {
  const message = new Command('message').description('look up stored messages by id or key');

  message
    .command('get')
    .description('show the message with this id (every stored copy, if a producer retry stored two)')
    .requiredOption('--id <msgId>', 'message id, as returned by send')
    .option('--json', 'one JSON object per line (see halfmq message --help)')
    .addOption(serverOption(io.env))
    .action(async (opts: { id: string; json?: boolean; server: string }) => {
      await withAdmin(opts.server, async (admin) => {
        for (const m of await admin.getMessage(opts.id)) io.out(format(m, opts.json));
      });
    });

  message
    .command('find')
    .description('show the messages of a topic sent with this key, oldest first')
    .requiredOption('--topic <topic>', 'topic')
    .requiredOption('--key <key>', 'message key')
    .option('--limit <n>', 'at most this many (default 100)', positiveInt)
    .option('--json', 'one JSON object per line (see halfmq message --help)')
    .addOption(serverOption(io.env))
    .action(async (opts: { topic: string; key: string; limit?: number; json?: boolean; server: string }) => {
      await withAdmin(opts.server, async (admin) => {
        const found = await admin.findMessages(opts.topic, opts.key, opts.limit !== undefined ? { limit: opts.limit } : {});
        for (const m of found) io.out(format(m, opts.json));
      });
    });

  return message;
}

function format(m: StoredMessage, json: boolean | undefined): string {
  const body = m.body.toString('utf8');
  if (json) {
    const { body: _, tag, deliverAt, ...rest } = m;
    return toJson({ ...rest, tag: tag ?? null, body, deliverAt: deliverAt ?? null });
  }
  const parts = [m.msgId, `${m.topic}/${m.queueId}@${m.queueOffset}`, `tag=${m.tag ?? '-'}`, `keys=${m.keys.join(',') || '-'}`];
  const props = Object.entries(m.properties);
  if (props.length > 0) parts.push(`props=${props.map(([k, v]) => `${k}=${v}`).join(',')}`);
  if (m.deliverAt !== undefined) parts.push(`deliverAt=${new Date(m.deliverAt).toISOString()}`);
  parts.push(/[\r\n]/.test(body) ? JSON.stringify(body) : body);
  return parts.join('  ');
}
