import { Command } from 'commander';
import { InvalidArgumentError } from '../common/errors.js';
import type { DeadLetterMessage } from '../common/message.js';
import { positiveInt, serverOption } from './options.js';
import { formatTable, toJson } from './output.js';
import type { CliIo } from './output.js';
import { withAdmin } from './topic-command.js';

/**
 * `halfmq dlq list|resend|purge --group G`: a group's dead-letter queue (`%DLQ%<group>`).
 *
 *   list    open entries, oldest first; --json prints one array of {msgId, topic, queueId,
 *           queueOffset, dlqOffset, tag (null when none), keys, properties, reason, reconsumeTimes,
 *           bornTimestamp, deadAt, body (UTF-8)}
 *   resend  --id ID or --all: delivered to the group again with a fresh retry count; prints
 *           "resent N message(s)" and the ids, one per line
 *   purge   discards every open entry; prints "purged N message(s)"
 */
export function dlqCommand(io: CliIo): Command {
  const dlq = new Command('dlq').description("inspect, resend or purge a consumer group's dead-letter queue");

  dlq
    .command('list')
    .description('open dead letters of a group: id, original topic, retries, when, last failure reason')
    .requiredOption('--group <group>', 'consumer group')
    .option('--limit <n>', 'at most this many (default 1000)', positiveInt)
    .option('--json', 'print a JSON array (see halfmq dlq --help)')
    .addOption(serverOption(io.env))
    .action(async (opts: { group: string; limit?: number; json?: boolean; server: string }) => {
      await withAdmin(opts.server, async (admin) => {
        const letters = await admin.dlqList(opts.group, opts.limit !== undefined ? { limit: opts.limit } : {});
        if (opts.json) return io.out(toJson(letters.map(toJsonEntry)));
        if (letters.length === 0) return io.out(`no dead letters in group ${opts.group}`);
        const rows = letters.map((l) => [l.msgId, l.topic, l.keys.join(',') || '-', l.reconsumeTimes, new Date(l.deadAt).toISOString(), l.reason]);
        for (const line of formatTable(['MSGID', 'TOPIC', 'KEYS', 'RETRIES', 'DEAD AT', 'REASON'], rows)) io.out(line);
      });
    });

  dlq
    .command('resend')
    .description('deliver dead letters to the group again, with a fresh retry count')
    .requiredOption('--group <group>', 'consumer group')
    .option('--id <msgId>', 'resend this message')
    .option('--all', 'resend every open dead letter')
    .addOption(serverOption(io.env))
    .action(async (opts: { group: string; id?: string; all?: boolean; server: string }) => {
      if ((opts.id === undefined) === (opts.all !== true)) throw new InvalidArgumentError('give exactly one of --id ID or --all');
      await withAdmin(opts.server, async (admin) => {
        const resent = await admin.dlqResend(opts.group, opts.id !== undefined ? { msgId: opts.id } : { all: true });
        io.out(`resent ${resent.length} message(s)`);
        for (const id of resent) io.out(id);
      });
    });

  dlq
    .command('purge')
    .description('discard every open dead letter of the group')
    .requiredOption('--group <group>', 'consumer group')
    .addOption(serverOption(io.env))
    .action(async (opts: { group: string; server: string }) => {
      await withAdmin(opts.server, async (admin) => {
        io.out(`purged ${await admin.dlqPurge(opts.group)} message(s)`);
      });
    });

  return dlq;
}

function toJsonEntry(l: DeadLetterMessage): Record<string, unknown> {
  const { body, tag, ...rest } = l;
  return { ...rest, tag: tag ?? null, body: body.toString('utf8') };
}
