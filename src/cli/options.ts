import { InvalidArgumentError as CommanderInvalidArgument, Option } from 'commander';

/**
 * Option helpers shared by the client commands. Parsers throw commander's InvalidArgumentError so
 * commander names the offending flag in its message.
 */
export const DEFAULT_SERVER = '127.0.0.1:9876';

/** How long a CLI command waits for the broker before giving up (the SDK default is longer). */
export const CLI_CONNECT_TIMEOUT_MS = 5_000;

/** `--server`, defaulting to $HALFMQ_SERVER, then 127.0.0.1:9876 (env read from the CliIo, so tests can set it). */
export function serverOption(env: Record<string, string | undefined>): Option {
  return new Option('--server <host:port>', 'broker address (env HALFMQ_SERVER)').default(env.HALFMQ_SERVER || DEFAULT_SERVER);
}

export function positiveInt(value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw new CommanderInvalidArgument('must be a positive integer');
  return Number(value);
}

export function nonNegativeInt(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new CommanderInvalidArgument('must be a non-negative integer');
  return Number(value);
}

/** Collects a repeatable option into an array. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
