import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InternalError } from '../../common/errors.js';

/**
 * `--embedded`: a broker in its own process (as users run it), on 127.0.0.1 with an ephemeral port
 * and a fresh temporary data directory that is removed afterwards. Only this process's own child is
 * ever signalled, by its pid.
 */
const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
const START_TIMEOUT_MS = 120_000;
const STDERR_KEEP = 64 * 1024;

export interface EmbeddedBroker {
  readonly endpoints: string;
  readonly dataDir: string;
  readonly pid: number;
  /** the broker's log (stderr), last 64 KiB */
  log(): string;
  /** SIGKILL, then wait for the exit */
  kill9(): Promise<void>;
  /** SIGTERM (clean close), then wait for the exit */
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  flush: 'sync' | 'async';
  dataDir?: string;
  /** more `halfmq broker` flags */
  args?: string[];
}

export async function makeTempDataDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'halfmq-bench-'));
}

export async function removeDataDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Starts the broker and resolves once it prints its "listening" line; `startMs` is spawn to listening. */
export async function startEmbeddedBroker(options: EmbeddedOptions): Promise<EmbeddedBroker & { startMs: number }> {
  const dataDir = options.dataDir ?? (await makeTempDataDir());
  const args = [MAIN, 'broker', '--host', '127.0.0.1', '--port', '0', '--data', dataDir, '--flush', options.flush, ...(options.args ?? [])];
  const started = performance.now();
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HALFMQ_SERVER: '' } });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
    if (stderr.length > 2 * STDERR_KEEP) stderr = stderr.slice(-STDERR_KEEP);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new InternalError(`embedded broker did not start within ${START_TIMEOUT_MS / 1000} s; its log:\n${stderr.slice(-4000)}`));
    }, START_TIMEOUT_MS);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /halfmq broker listening on \S+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new InternalError(`embedded broker exited before listening; its log:\n${stderr.slice(-4000)}`));
    });
  });
  const startMs = performance.now() - started;
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    endpoints: `127.0.0.1:${port}`,
    dataDir,
    pid: child.pid!,
    startMs,
    log: () => stderr,
    kill9: async () => {
      if (alive()) child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (alive()) child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (alive()) child.kill('SIGKILL');
      }, 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
