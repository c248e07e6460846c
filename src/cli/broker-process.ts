import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InternalError } from '../common/errors.js';
import { HEAP_FLOOR_FLAGS } from './heap-floor.js';

/**
 * Runs `halfmq broker` as its own process, as users run it: on 127.0.0.1, an ephemeral port unless
 * told otherwise, and resolves once it prints its "listening" line. Used by `halfmq bench
 * --embedded` and by the integration tests. Only this process's own child is ever signalled, by pid.
 */
// Two levels up from src/cli/ and from dist/cli/ alike: the package root.
const BIN = fileURLToPath(new URL('../../bin/halfmq', import.meta.url));
const LOG_KEEP = 1024 * 1024;

export interface BrokerProcess {
  readonly endpoints: string;
  readonly port: number;
  readonly dataDir: string;
  readonly pid: number;
  /** spawn to "listening", ms */
  readonly startMs: number;
  /** the broker's log (stderr), the last MiB of it */
  log(): string;
  /** SIGKILL, then wait for the exit */
  kill9(): Promise<void>;
  /** SIGTERM (or `signal`) for a clean close, SIGKILL after 30 s; resolves with the exit code */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface BrokerProcessOptions {
  /** default: a fresh temporary directory (not removed by stop: see removeDataDir) */
  dataDir?: string;
  /** default 0, any free port; a restart after a crash can ask for the old one */
  port?: number;
  /** default: the broker's own (sync) */
  flush?: 'sync' | 'async';
  /** more `halfmq broker` flags */
  args?: string[];
  /** default 120 s (a restart may recover a large log) */
  startTimeoutMs?: number;
}

export async function makeTempDataDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'halfmq-'));
}

export async function removeDataDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export async function startBrokerProcess(options: BrokerProcessOptions = {}): Promise<BrokerProcess> {
  const dataDir = options.dataDir ?? (await makeTempDataDir());
  const startTimeoutMs = options.startTimeoutMs ?? 120_000;
  const args = [...HEAP_FLOOR_FLAGS, BIN, 'broker', '--host', '127.0.0.1', '--port', String(options.port ?? 0), '--data', dataDir];
  if (options.flush !== undefined) args.push('--flush', options.flush);
  args.push(...(options.args ?? []));
  const started = performance.now();
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HALFMQ_SERVER: '' } });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
    if (stderr.length > 2 * LOG_KEEP) stderr = stderr.slice(-LOG_KEEP);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const listening = new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new InternalError(`broker did not start within ${startTimeoutMs / 1000} s; its log:\n${stderr.slice(-4000)}`));
    }, startTimeoutMs);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /halfmq broker listening on \S+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new InternalError(`broker exited with ${code} before listening; its log:\n${stderr.slice(-4000)}`));
    });
  });
  let port: number;
  try {
    port = await listening;
  } catch (err) {
    // A temp dir of our own making is ours to remove (once the broker is gone); a dir the caller
    // named is not.
    await exited;
    if (options.dataDir === undefined) await removeDataDir(dataDir);
    throw err;
  }
  const startMs = performance.now() - started;
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    endpoints: `127.0.0.1:${port}`,
    port,
    dataDir,
    pid: child.pid!,
    startMs,
    log: () => stderr,
    kill9: async () => {
      if (alive()) child.kill('SIGKILL');
      await exited;
    },
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (alive()) child.kill(signal);
      const timer = setTimeout(() => {
        if (alive()) child.kill('SIGKILL');
      }, 30_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
