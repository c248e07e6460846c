import stringify from 'fast-json-stable-stringify';
import { CommanderError } from 'commander';
import { HalfmqError } from '../common/errors.js';

/**
 * Where CLI output goes and how it looks. Commands write through a CliIo so tests can capture it;
 * errors become one line `halfmq: <message> (<CODE>)` and never a stack trace.
 */
export interface CliIo {
  /** writes one line to stdout */
  out(line: string): void;
  /** writes one line to stderr */
  err(line: string): void;
  env: Record<string, string | undefined>;
}

export const processIo: CliIo = {
  out: (line) => void process.stdout.write(line + '\n'),
  err: (line) => void process.stderr.write(line + '\n'),
  env: process.env,
};

/** Stable key order, so output diffs and tests do not depend on insertion order. */
export function toJson(value: unknown): string {
  return stringify(value);
}

export function formatError(err: unknown): string {
  if (err instanceof HalfmqError) return `halfmq: ${err.message} (${err.code})`;
  if (err instanceof CommanderError) return `halfmq: ${err.message.replace(/^error:\s*/, '')} (INVALID_ARGUMENT)`;
  const message = err instanceof Error ? err.message : String(err);
  return `halfmq: ${message} (INTERNAL)`;
}

/** Left-aligned columns, two spaces apart. */
export function formatTable(header: string[], rows: (string | number)[][]): string[] {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}
