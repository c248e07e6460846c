import { spawn } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBrokerProcess as launch, removeDataDir } from '../../src/cli/broker-process.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin', 'halfmq');

export async function tempDir(prefix = 'halfmq-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

export interface BrokerProcess {
  readonly pid: number;
  readonly port: number;
  readonly endpoints: string;
  readonly dataDir: string;
  /** everything the broker wrote to stderr so far (its log) */
  stderr(): string;
  /** kill -9 and wait for the process to be gone */
  kill9(): Promise<void>;
  /** SIGTERM (or `signal`); resolves with the exit code */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `halfmq broker` as its own process on 127.0.0.1 with an ephemeral port (or `port`),
 * and resolves once it prints its "listening" line. The launcher is the one `halfmq bench` uses.
 */
export async function startBrokerProcess(options: { dataDir?: string; port?: number; args?: string[] } = {}): Promise<BrokerProcess> {
  const b = await launch({ dataDir: options.dataDir ?? (await tempDir()), port: options.port, args: options.args, startTimeoutMs: 20_000 });
  return { pid: b.pid, port: b.port, endpoints: b.endpoints, dataDir: b.dataDir, stderr: () => b.log(), kill9: () => b.kill9(), stop: (signal) => b.stop(signal) };
}

export const removeDir = removeDataDir;

/**
 * One broker process for the tests of a file (or describe block): started before them, stopped and
 * its data removed after. Returns the getter to use inside the tests.
 */
export function sharedBroker(options: { args?: string[] } = {}): () => BrokerProcess {
  let broker: BrokerProcess | undefined;
  beforeAll(async () => {
    broker = await startBrokerProcess(options);
  });
  afterAll(async () => {
    await broker?.stop();
    if (broker) await removeDir(broker.dataDir);
  });
  return () => {
    if (broker === undefined) throw new Error('the shared broker has not started');
    return broker;
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the `halfmq` CLI as a user would and captures its output. */
export function runCli(args: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HALFMQ_SERVER: '', ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`halfmq ${args.join(' ')} did not exit within ${options.timeoutMs ?? 30_000} ms; stderr: ${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Polls `check` until it returns true or the time is up (then throws with `what`). */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
