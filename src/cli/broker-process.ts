import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InternalError } from '../common/errors.js';

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

/**
 * Node flags for a broker process (`npm start` passes the same). The floor under V8's old-generation
 * limit stops a full mark-compact every 100-300 ms under load: V8 otherwise sets the limit a few MB
 * above the small live heap, and the marking steps of each cycle (up to 10 ms) land in send and
 * delivery latency. Measured at 15,000 msgs/s: 13-22 full GCs in 6 s -> 2, e2e p99 25-36 ms -> 6-20 ms.
 * V8 reads it only at start-up, so it cannot be set from inside the broker.
 */
export const BROKER_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];

export async function makeTempDataDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'halfmq-'));
}

export async function removeDataDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export async function startBrokerProcess(options: BrokerProcessOptions = {}): Promise<BrokerProcess> {
  const dataDir = options.dataDir ?? (await makeTempDataDir());
  const startTimeoutMs = options.startTimeoutMs ?? 120_000;
  const args = [...BROKER_NODE_FLAGS, BIN, 'broker', '--host', '127.0.0.1', '--port', String(options.port ?? 0), '--data', dataDir];
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
  const port = await new Promise<number>((resolve, reject) => {
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
