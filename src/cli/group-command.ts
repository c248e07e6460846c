import { Command } from 'commander';
import { serverOption } from './options.js';
import { formatTable, toJson } from './output.js';
import type { CliIo } from './output.js';
import { withAdmin } from './topic-command.js';

/** `halfmq group status|list` */
export function groupCommand(io: CliIo): Command {
  const group = new Command('group').description('inspect consumer groups');

  group
    .command('status')
    .description('members of a group and, per queue, committed offset, max offset, lag and messages in flight')
    .argument('<group>', 'consumer group')
    .option('--json', 'print the status as one JSON object {group, members, queues, totalLag, deadLetters}')
    .addOption(serverOption(io.env))
    .action(async (name: string, opts: { json?: boolean; server: string }) => {
      await withAdmin(opts.server, async (admin) => {
        const status = await admin.groupStatus(name);
        if (opts.json) return io.out(toJson(status));
        io.out(`group ${status.group}: ${status.members.length} member(s), total lag ${status.totalLag}, dead letters ${status.deadLetters}`);
        if (status.members.length > 0) {
          io.out('');
          const rows = status.members.map((m) => [m.memberId, m.address, Object.keys(m.subscriptions).join(','), m.queues.join(',') || '-']);
          for (const line of formatTable(['MEMBER', 'ADDRESS', 'TOPICS', 'QUEUES'], rows)) io.out(line);
        }
        if (status.queues.length > 0) {
          io.out('');
          const rows = status.queues.map((q) => [q.topic, q.queueId, q.committedOffset, q.maxOffset, q.lag, q.inflight, q.owner ?? '-']);
          for (const line of formatTable(['TOPIC', 'QUEUE', 'COMMITTED', 'MAX', 'LAG', 'INFLIGHT', 'OWNER'], rows)) io.out(line);
        }
      });
    });

  group
    .command('list')
    .description('list consumer groups, one per line')
    .option('--json', 'print a JSON array of group names')
    .addOption(serverOption(io.env))
    .action(async (opts: { json?: boolean; server: string }) => {
      await withAdmin(opts.server, async (admin) => {
        const groups = (await admin.listGroups()).sort();
        if (opts.json) return io.out(toJson(groups));
        for (const g of groups) io.out(g);
      });
    });

  return group;
}
