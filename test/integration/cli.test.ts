import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BIN, removeDir, runCli, startBrokerProcess, uniqueName, waitFor } from '../helpers/broker-process.js';
import type { BrokerProcess } from '../helpers/broker-process.js';

let broker: BrokerProcess;
let server: string[];

beforeAll(async () => {
  broker = await startBrokerProcess();
  server = ['--server', broker.endpoints];
});

afterAll(async () => {
  await broker?.stop();
  if (broker) await removeDir(broker.dataDir);
});

describe('halfmq CLI', () => {
  it('documents every command in --help', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['broker', 'topic', 'send', 'consume', 'group']) expect(r.stdout).toContain(cmd);
  });

  it('ends quietly when the reader of its output goes away (`halfmq ... | head`)', async () => {
    // The read end closes before the child has even started, so its first write meets EPIPE.
    const child = spawn(process.execPath, [BIN, 'broker', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('runs bench in a node with its heap settings, passing its output and exit code through', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'halfmq-cli-bench-'));
    try {
      const disk = ['bench', 'disk', '--rate', '1000', '--duration', '0.2', '--dir', dir, '--json'];
      const ok = await runCli(disk);
      expect(ok.code, ok.stderr).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ scenario: 'disk', messages: 200, details: { nodeFlags: '--initial-old-space-size=128 --max-semi-space-size=32' } });
      const bad = await runCli(['bench', 'disk', '--server', '127.0.0.1:1']);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('file system alone');
      // Started with a floor of its own: it runs as it is, in this process.
      const child = spawn(process.execPath, ['--initial-old-space-size=64', BIN, ...disk], { stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      expect(await new Promise<number | null>((resolve) => child.on('exit', resolve))).toBe(0);
      expect(JSON.parse(stdout).details.nodeFlags).toBe('--initial-old-space-size=64');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each([
    // At once: the broker may still be starting.
    ['SIGTERM to the bench', 'SIGTERM', false, 0],
    // As Ctrl-C does, under load: the whole process group, so the relaunched bench hears it twice.
    ['SIGINT to its process group', 'SIGINT', true, 500],
  ] as const)('stopped by %s, bench stops its embedded broker and removes its data dir', async (_what, signal, group, afterMs) => {
    // The bench's temp dirs go under a dir of this test's own (TMPDIR), so they can be watched.
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'halfmq-cli-interrupt-'));
    const bench = spawnBench(['produce', '--messages', '100000000', '--duration', '60'], { env: { TMPDIR: tmp }, detached: group });
    try {
      let brokerPid = 0;
      await waitFor(async () => {
        const dirs = (await readdir(tmp)).filter((n) => n.startsWith('halfmq-'));
        brokerPid = dirs.length === 1 ? await pidWithArg(path.join(tmp, dirs[0]!)) : 0;
        return brokerPid > 0;
      }, 'the embedded broker', 20_000);
      await new Promise((resolve) => setTimeout(resolve, afterMs));
      process.kill(group ? -bench.child.pid! : bench.child.pid!, signal);
      expect(await bench.exited, bench.stderr()).toBe(128 + os.constants.signals[signal]);
      expect(bench.stderr()).toContain('stopping the embedded broker');
      expect(isAlive(brokerPid)).toBe(false);
      expect(await readdir(tmp)).toEqual([]);
    } finally {
      bench.kill9IfRunning();
      await rm(tmp, { recursive: true, force: true });
    }
  }, 60_000);

  it('stopped half way, bench disk removes its files', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'halfmq-cli-disk-interrupt-'));
    const bench = spawnBench(['disk', '--rate', '1000', '--duration', '30', '--dir', dir]);
    try {
      await waitFor(async () => (await readdir(dir)).length > 0, 'the disk scenario files', 20_000);
      bench.child.kill('SIGTERM');
      expect(await bench.exited).toBe(128 + os.constants.signals.SIGTERM);
      expect(await readdir(dir)).toEqual([]);
    } finally {
      bench.kill9IfRunning();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('creates and lists topics, as text and JSON', async () => {
    const topic = uniqueName('cli-topic');
    const created = await runCli(['topic', 'create', topic, '--queues', '3', ...server]);
    expect(created.code, created.stderr).toBe(0);
    const list = await runCli(['topic', 'list', '--json', ...server]);
    expect(list.code).toBe(0);
    const topics = JSON.parse(list.stdout) as { name: string; queues: number }[];
    expect(topics.find((t) => t.name === topic)).toMatchObject({ queues: 3 });
    const text = await runCli(['topic', 'list', ...server]);
    expect(text.stdout).toContain(topic);
  });

  it('sends with --count and consumes as JSON lines; a second run of the group continues', async () => {
    const topic = uniqueName('cli-rt');
    const group = uniqueName('cli-g');
    const sent = await runCli(['send', '--topic', topic, '--body', 'hello', '--key', 'k1', '--tag', 'T1', '--property', 'a=1', '--property', 'b=two', '--count', '5', ...server]);
    expect(sent.code, sent.stderr).toBe(0);
    const ids = sent.stdout.trim().split('\n');
    expect(ids).toHaveLength(5);
    expect(new Set(ids).size).toBe(5);

    const first = await runCli(['consume', '--topic', topic, '--group', group, '--count', '3', '--json', ...server]);
    expect(first.code, first.stderr).toBe(0);
    const lines = first.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(3);
    for (const m of lines) {
      for (const field of ['msgId', 'topic', 'queueId', 'queueOffset', 'tag', 'keys', 'properties', 'body', 'bornTimestamp', 'storeTimestamp', 'reconsumeTimes']) {
        expect(m, field).toHaveProperty(field);
      }
      expect(m.topic).toBe(topic);
      expect(m.tag).toBe('T1');
      expect(m.keys).toEqual(['k1']);
      expect(m.properties).toMatchObject({ a: '1', b: 'two' });
      expect(String(m.body)).toMatch(/^hello-[0-4]$/);
      expect(ids).toContain(m.msgId);
    }

    const second = await runCli(['consume', '--topic', topic, '--group', group, '--count', '2', '--json', ...server]);
    expect(second.code, second.stderr).toBe(0);
    const rest = second.stdout.trim().split('\n').map((l) => JSON.parse(l) as { body: string });
    const all = [...lines.map((m) => String(m.body)), ...rest.map((m) => m.body)].sort();
    expect(all).toEqual(['hello-0', 'hello-1', 'hello-2', 'hello-3', 'hello-4']);
  });

  it('exits non-zero with a clear message when --count is not reached in time', async () => {
    const topic = uniqueName('cli-empty');
    await runCli(['topic', 'create', topic, ...server]);
    const r = await runCli(['consume', '--topic', topic, '--group', uniqueName('g'), '--count', '1', '--timeout-ms', '500', ...server]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.toLowerCase()).toContain('timed out');
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('prints one clear line and exits non-zero for an unknown topic, a bad flag, and a broker that is down', async () => {
    const unknown = await runCli(['consume', '--topic', uniqueName('nope'), '--group', 'g', '--count', '1', ...server]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/does not exist/);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);

    const badFlag = await runCli(['send', '--topic', 't', '--body', 'x', '--count', 'many', ...server]);
    expect(badFlag.code).not.toBe(0);
    expect(badFlag.stderr).not.toMatch(/\n\s+at /);

    const down = await runCli(['topic', 'list', '--server', '127.0.0.1:1']);
    expect(down.code).not.toBe(0);
    expect(down.stderr).toMatch(/127\.0\.0\.1:1/);
    expect(down.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('takes the server from HALFMQ_SERVER', async () => {
    const r = await runCli(['topic', 'list', '--json'], { env: { HALFMQ_SERVER: broker.endpoints } });
    expect(r.code, r.stderr).toBe(0);
    expect(() => JSON.parse(r.stdout)).not.toThrow();
  });

  it('shows group status with lag', async () => {
    const topic = uniqueName('cli-lag');
    const group = uniqueName('g');
    await runCli(['send', '--topic', topic, '--body', 'x', '--count', '4', ...server]);
    await runCli(['consume', '--topic', topic, '--group', group, '--count', '1', ...server]);
    const r = await runCli(['group', 'status', group, '--json', ...server]);
    expect(r.code, r.stderr).toBe(0);
    const status = JSON.parse(r.stdout) as { totalLag: number };
    expect(status.totalLag).toBe(3);
  });

  it('sends a delayed message with --delay-ms: not consumable early, delivered after the delay', async () => {
    const topic = uniqueName('cli-delay');
    const group = uniqueName('g');
    const sentAt = Date.now();
    const sent = await runCli(['send', '--topic', topic, '--body', 'later', '--delay-ms', '1500', ...server]);
    expect(sent.code, sent.stderr).toBe(0);
    const early = await runCli(['consume', '--topic', topic, '--group', group, '--count', '1', '--timeout-ms', '400', ...server]);
    expect(early.code).not.toBe(0);
    const late = await runCli(['consume', '--topic', topic, '--group', group, '--count', '1', '--timeout-ms', '5000', '--json', ...server]);
    expect(late.code, late.stderr).toBe(0);
    expect(JSON.parse(late.stdout).body).toBe('later');
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(1400);
    const both = await runCli(['send', '--topic', topic, '--body', 'x', '--delay-ms', '1', '--deliver-at', '1', ...server]);
    expect(both.code).not.toBe(0);
    expect(both.stderr.trim().split('\n')).toHaveLength(1);
  });
});

/** `halfmq bench <args> --json` as a child process of this test, to be stopped half way. */
function spawnBench(args: string[], options: { env?: Record<string, string>; detached?: boolean } = {}) {
  const child = spawn(process.execPath, [BIN, 'bench', ...args, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HALFMQ_SERVER: '', ...options.env },
    detached: options.detached ?? false,
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  return {
    child,
    exited: new Promise<number | null>((resolve) => child.on('exit', resolve)),
    stderr: () => stderr,
    kill9IfRunning: () => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')),
  };
}

/** The pid of a process of this user whose command line has `arg` (Linux /proc), or 0. */
async function pidWithArg(arg: string): Promise<number> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes(arg)) return Number(entry);
  }
  return 0;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
