import { Command, Option } from 'commander';
import { InvalidArgumentError } from '../common/errors.js';
import type { TransactionInfo } from '../protocol/transaction-commands.js';
import { serverOption } from './options.js';
import { formatTable, toJson } from './output.js';
import type { CliIo } from './output.js';
import { withAdmin } from './topic-command.js';

const time = (ms: number | undefined): string => (ms === undefined ? '-' : new Date(ms).toISOString());

/** `halfmq tx list|show|resolve`: inspect transactions and compensate parked ones by hand. */
export function txCommand(io: CliIo): Command {
  const tx = new Command('tx').description('inspect transactions; commit or roll back parked ones by hand');

  tx.command('list')
    .description('list transactions (default: PREPARED ones, awaiting their end or a check-back)')
    .addOption(new Option('--state <state>', 'prepared, parked or all').choices(['prepared', 'parked', 'all']).default('prepared'))
    .option('--json', 'print a JSON array of {transactionId, producerGroup, state, createdAt, checkTimes, nextCheckAt, resolvedAt, resolvedBy, messages}')
    .addOption(serverOption(io.env))
    .action(async (opts: { state: 'prepared' | 'parked' | 'all'; json?: boolean; server: string }) => {
      await withAdmin(opts.server, async (admin) => {
        const txs = await admin.listTransactions({ state: opts.state });
        if (opts.json) return io.out(toJson(txs));
        const rows = txs.map((t) => [t.transactionId, t.producerGroup, t.state, t.messages.length, t.checkTimes, time(t.createdAt), time(t.nextCheckAt ?? t.resolvedAt)]);
        for (const line of formatTable(['TRANSACTION', 'GROUP', 'STATE', 'MESSAGES', 'CHECKS', 'CREATED', 'NEXT CHECK / RESOLVED'], rows)) io.out(line);
      });
    });

  tx.command('show')
    .description('show one transaction and its messages')
    .argument('<id>', 'transaction id')
    .option('--json', 'print it as JSON')
    .addOption(serverOption(io.env))
    .action(async (id: string, opts: { json?: boolean; server: string }) => {
      await withAdmin(opts.server, async (admin) => {
        const t = await admin.getTransaction(id);
        if (opts.json) return io.out(toJson(t));
        for (const line of describe(t)) io.out(line);
      });
    });

  tx.command('resolve')
    .description('commit or roll back a transaction as an operator (manual compensation, e.g. for PARKED ones)')
    .argument('<id>', 'transaction id')
    .option('--commit', 'make its messages visible')
    .option('--rollback', 'discard its messages')
    .addOption(serverOption(io.env))
    .action(async (id: string, opts: { commit?: boolean; rollback?: boolean; server: string }) => {
      if (Boolean(opts.commit) === Boolean(opts.rollback)) throw new InvalidArgumentError('give exactly one of --commit or --rollback');
      await withAdmin(opts.server, async (admin) => {
        const { state, changed } = await admin.resolveTransaction(id, opts.commit ? 'COMMIT' : 'ROLLBACK');
        io.out(changed ? `transaction ${id} is now ${state}` : `transaction ${id} was already ${state}`);
      });
    });

  return tx;
}

function describe(t: TransactionInfo): string[] {
  const lines = [
    `transaction ${t.transactionId}`,
    `  group       ${t.producerGroup}`,
    `  state       ${t.state}${t.resolvedBy ? ` (by ${t.resolvedBy} at ${time(t.resolvedAt)})` : ''}`,
    `  created     ${time(t.createdAt)}`,
    `  checks      ${t.checkTimes}${t.nextCheckAt !== undefined ? `, next at ${time(t.nextCheckAt)}` : ''}`,
    `  messages    ${t.messages.length}`,
  ];
  for (const m of t.messages) lines.push(`    ${m.msgId}  ${m.topic}/${m.queueId}${m.tag ? `  tag=${m.tag}` : ''}${m.keys.length ? `  keys=${m.keys.join(',')}` : ''}`);
  return lines;
}
