import { Command, CommanderError } from 'commander';
import { benchCommand } from './bench-command.js';
import { brokerCommand } from './broker-command.js';
import { consumeCommand } from './consume-command.js';
import { dlqCommand } from './dlq-command.js';
import { messageCommand } from './message-command.js';
import { groupCommand } from './group-command.js';
import { formatError, processIo } from './output.js';
import type { CliIo } from './output.js';
import { sendCommand } from './send-command.js';
import { topicCommand } from './topic-command.js';
import { txCommand } from './tx-command.js';

const VERSION = '0.1.0';

/** The whole command tree. Errors are thrown (exitOverride), never printed by commander itself. */
export function buildProgram(io: CliIo = processIo): Command {
  const program = new Command('halfmq')
    .description('halfmq: a RocketMQ-style message broker (half messages, retries, dead letters) and its client tools')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s.replace(/\n$/, '')),
      writeErr: (s) => io.err(s.replace(/\n$/, '')),
      // Errors are formatted by run() as one `halfmq: ... (CODE)` line.
      outputError: () => undefined,
    })
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      '\nClient commands take --server HOST:PORT (default 127.0.0.1:9876, env HALFMQ_SERVER).\n' +
        'Errors print one line "halfmq: <message> (<CODE>)" on stderr and exit non-zero.\n\n' +
        'Examples:\n' +
        '  halfmq broker --data ./data --port 9876\n' +
        '  halfmq topic create orders --queues 8\n' +
        '  halfmq send --topic orders --body hello --tag created --key order-1 --property region=eu\n' +
        '  halfmq consume --topic orders --group points --count 10 --json\n' +
        '  halfmq group status points\n' +
        '  halfmq tx list --state parked',
    );
  // Subcommands made with `new Command` do not inherit exitOverride/output settings: copy them.
  for (const command of [brokerCommand(io), topicCommand(io), sendCommand(io), consumeCommand(io), groupCommand(io), dlqCommand(io), messageCommand(io), txCommand(io), benchCommand(io)]) {
    program.addCommand(inherit(command, program));
  }
  return program;
}

function inherit(command: Command, parent: Command): Command {
  command.copyInheritedSettings(parent);
  for (const sub of command.commands) inherit(sub, command);
  return command;
}

/** Parses argv and runs the command; resolves with the exit code. Never throws. */
export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help, --version, or help shown for a missing subcommand: commander already wrote it.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return err.exitCode;
      if (err.code === 'commander.executeSubCommandAsync') return err.exitCode;
    }
    io.err(formatError(err));
    return 1;
  }
}
