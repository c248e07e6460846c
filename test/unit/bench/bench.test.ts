import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBench } from '../../../src/cli/bench-command.js';
import { Histogram, bucketHighest, bucketIndex } from '../../../src/cli/bench/histogram.js';
import { resolveBenchOptions } from '../../../src/cli/bench/options.js';
import { silentProgress } from '../../../src/cli/bench/progress.js';
import { run } from '../../../src/cli/program.js';
import type { CliIo } from '../../../src/cli/output.js';

describe('bench histogram', () => {
  it('maps every value into a bucket whose highest value is within 0.8% above it', () => {
    for (const v of [0, 1, 255, 256, 257, 1000, 4095, 123_456, 9_999_999, 2 ** 31 - 1]) {
      const i = bucketIndex(v);
      expect(bucketHighest(i)).toBeGreaterThanOrEqual(v);
      expect(bucketHighest(i) - v).toBeLessThanOrEqual(Math.max(0, v / 128));
      if (i > 0) expect(bucketHighest(i - 1)).toBeLessThan(v);
    }
  });

  it('reports percentiles of a uniform 1..10000 µs distribution within 1%', () => {
    const h = new Histogram();
    for (let v = 1; v <= 10_000; v++) h.record(v);
    expect(h.count).toBe(10_000);
    for (const [p, want] of [[50, 5000], [90, 9000], [99, 9900]] as const) {
      expect(Math.abs(h.percentile(p) - want) / want).toBeLessThan(0.01);
    }
    expect(h.percentile(100)).toBe(10_000);
    expect(h.summaryMs()).toMatchObject({ max: 10 });
  });

  it('handles empty, sub-microsecond and merged histograms', () => {
    const a = new Histogram();
    expect(a.summaryMs()).toEqual({ p50: 0, p90: 0, p99: 0, max: 0 });
    a.recordMs(0.0004);
    a.recordMs(2);
    const b = new Histogram();
    b.recordMs(7);
    a.merge(b);
    expect(a.count).toBe(3);
    expect(a.percentile(50)).toBeCloseTo(2000, -2);
    expect(a.max).toBe(7000);
  });
});

describe('bench options', () => {
  it('defaults to an embedded sync broker, 1 KiB, 256 in flight', () => {
    const o = resolveBenchOptions('produce', {});
    expect(o).toMatchObject({ scenario: 'produce', target: { kind: 'embedded', flush: 'sync' }, size: 1024, concurrency: 256, batch: 1, messages: 100_000, json: false });
  });

  it('parses every flag', () => {
    const o = resolveBenchOptions('e2e', { server: '127.0.0.1:9999', messages: '5_000', size: '4KiB', concurrency: '8', batch: '16', duration: '2.5', rate: '1000', queues: '2', json: true });
    expect(o).toMatchObject({ target: { kind: 'server', address: '127.0.0.1:9999' }, messages: 5000, size: 4096, concurrency: 8, batch: 16, durationS: 2.5, rate: 1000, queues: 2, json: true });
    expect(resolveBenchOptions('e2e', { rate: '2000', duration: '3' }).messages).toBe(6000);
    expect(resolveBenchOptions('recovery', { logBytes: '64MiB', flush: 'async' })).toMatchObject({ logBytes: 64 * 1024 * 1024, target: { flush: 'async' } });
  });

  it.each([
    ['nope', {}, /unknown scenario/],
    ['produce', { server: '127.0.0.1:1', embedded: true }, /exclusive/],
    ['produce', { flush: 'maybe' }, /--flush/],
    ['produce', { server: '127.0.0.1:1', flush: 'async' }, /--flush applies/],
    ['produce', { messages: '0' }, /--messages must be a positive integer/],
    ['produce', { size: 'big' }, /--size/],
    ['produce', { rate: '10' }, /--rate applies/],
    ['recovery', { server: '127.0.0.1:1' }, /needs --embedded/],
    ['consume', { batch: '5000' }, /at most 1024/],
    ['disk', { server: '127.0.0.1:1' }, /file system alone/],
    ['disk', { flush: 'async' }, /file system alone/],
    ['disk', { rate: '1000000', duration: '10' }, /more than 2 GiB/],
    ['produce', { dir: '/tmp' }, /--dir applies to the disk scenario only/],
  ])('refuses %s %j', (scenario, flags, message) => {
    expect(() => resolveBenchOptions(scenario, flags)).toThrow(message);
  });

  it('gives disk a rate, a short duration and no broker', () => {
    expect(resolveBenchOptions('disk', {})).toMatchObject({ target: { kind: 'none' }, rate: 10_000, durationS: 5, messages: 50_000, dir: undefined });
    expect(resolveBenchOptions('disk', { rate: '2000', duration: '2', dir: '/data' })).toMatchObject({ rate: 2000, messages: 4000, dir: '/data' });
  });

  it('is reachable from the CLI with a one-line usage error', async () => {
    const err: string[] = [];
    const io: CliIo = { out: () => undefined, err: (l) => void err.push(l), env: {} };
    expect(await run(['node', 'halfmq', 'bench', 'produce', '--concurrency', 'x'], io)).toBe(1);
    expect(err).toEqual(['halfmq: --concurrency must be a positive integer, got "x" (INVALID_ARGUMENT)']);
  });
});

describe('bench disk', () => {
  it('measures the file system with no broker and leaves nothing behind', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'halfmq-bench-disk-test-'));
    try {
      const r = await runBench(resolveBenchOptions('disk', { rate: '2000', duration: '0.3', size: '512', dir }), silentProgress, () => undefined);
      // Every record that arrived was written, by fewer writes than records (group commit).
      expect(r).toMatchObject({ scenario: 'disk', messages: 600 });
      const details = r.details as { writes: number; appendMBps: number; fdatasync1KiB: { p50: number; p99: number }; size: number };
      expect(details.size).toBe(512);
      expect(details.writes).toBeGreaterThan(0);
      expect(details.writes).toBeLessThan(600);
      expect(details.appendMBps).toBeGreaterThan(0);
      expect(details.fdatasync1KiB.p50).toBeGreaterThan(0);
      expect(r.latencyMs.p50).toBeGreaterThan(0);
      expect(r.latencyMs.max).toBeGreaterThanOrEqual(r.latencyMs.p99);
      expect(await readdir(dir)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('bench e2e', () => {
  it('at a fixed rate delivers every message sent and times its acknowledgement apart', async () => {
    const r = await runBench(resolveBenchOptions('e2e', { rate: '1000', duration: '1', queues: '2' }), silentProgress, () => undefined);
    const details = r.details as { sent: number; sendAckMs: { p50: number; p90: number; p99: number; max: number } };
    expect(details.sent).toBe(1000);
    expect(r.messages).toBe(details.sent);
    expect(details.sendAckMs.p50).toBeGreaterThan(0);
    expect(details.sendAckMs.max).toBeGreaterThanOrEqual(details.sendAckMs.p99);
    expect(details.sendAckMs.max).toBeLessThan(10_000);
  }, 60_000);
});

describe('bench consume', () => {
  it('warms up on a part of the topic of its own, then measures a drain of exactly --messages', async () => {
    // Pulls of 64, two in flight: the warm-up's last pulls run past it, and the measured drain must still find its own.
    const r = await runBench(resolveBenchOptions('consume', { messages: '3000', batch: '64', concurrency: '2', queues: '2', duration: '20' }), silentProgress, () => undefined);
    expect(r.messages).toBe(3000);
    expect(r.details).toMatchObject({ warmupMessages: 1500, pullBatch: 64, pullsInFlight: 2 });
    expect(r.latencyMs.p50).toBeGreaterThan(0);
  }, 60_000);
});
