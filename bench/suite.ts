/**
 * `npm run bench:suite [-- --runs N] [--quick] [--cli PATH/dist/cli/main.js]`: runs the `halfmq bench` scenarios behind
 * BENCHMARKS.md, each N times (default 3) in its own embedded broker, and prints a markdown table of
 * medians (every run's msgs/s in brackets). Sequential, so runs do not compete for the two cores.
 * Not part of `npm test`; asserts nothing.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { BenchResult } from '../src/cli/bench/scenarios.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEFAULT_BIN = path.join(ROOT, 'bin', 'halfmq');

/** What `halfmq bench --json` prints (its contract type). */
type Result = BenchResult;

const args = process.argv.slice(2);
const runs = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) || 3 : 3;
const quick = args.includes('--quick');
// --cli PATH: another build's dist/cli/main.js (e.g. a checkout of an older commit) for before/after.
const BIN = args.includes('--cli') ? path.resolve(args[args.indexOf('--cli') + 1]!) : DEFAULT_BIN;
const scale = (n: number): string => String(quick ? Math.max(1000, Math.round(n / 10)) : n);

const CASES: { label: string; argv: string[] }[] = [
  { label: 'produce, 256 in flight', argv: ['produce', '--messages', scale(200_000)] },
  { label: 'produce, one at a time', argv: ['produce', '--messages', scale(5_000), '--concurrency', '1'] },
  { label: 'produce, sendBatch 64 x 4 in flight', argv: ['produce', '--messages', scale(200_000), '--batch', '64', '--concurrency', '4'] },
  { label: 'consume (drain pre-filled topic)', argv: ['consume', '--messages', scale(200_000), '--concurrency', '4', '--batch', '256'] },
  { label: 'e2e at saturation', argv: ['e2e', '--messages', scale(100_000)] },
  // The target's own terms: the rate is half of this run's median e2e saturation (filled in below).
  { label: 'e2e at half of saturation', argv: ['e2e', '--rate', 'HALF', '--duration', quick ? '2' : '5'] },
  // No broker: the disk's own group-commit latency at that rate, the floor under the row above.
  { label: 'disk alone, group commit at half of saturation', argv: ['disk', '--rate', 'HALF', '--duration', quick ? '2' : '5'] },
  { label: 'e2e at 10,000 msgs/s', argv: ['e2e', '--rate', '10000', '--duration', quick ? '2' : '5'] },
  { label: 'e2e at 5,000 msgs/s', argv: ['e2e', '--rate', '5000', '--duration', quick ? '2' : '5'] },
  { label: 'tx (half + commit)', argv: ['tx', '--messages', scale(100_000)] },
  { label: 'check (orphans resolved by check-back)', argv: ['check', '--messages', scale(10_000)] },
];

function bench(argv: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, 'bench', ...argv, '--json'], { maxBuffer: 1 << 20, timeout: 300_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`halfmq bench ${argv.join(' ')} failed: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop()!) as Result);
    });
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`| scenario | command | msgs/s (median of ${runs}) [runs] | MB/s | p50 ms | p90 ms | p99 ms | max ms |`);
console.log('|---|---|---|---|---|---|---|---|');
let e2eSaturation: number | undefined;
for (const c of CASES) {
  if (c.argv.includes('HALF')) {
    if (e2eSaturation === undefined) continue;
    c.argv[c.argv.indexOf('HALF')] = String(Math.round(e2eSaturation / 2));
  }
  const results: Result[] = [];
  for (let i = 0; i < runs; i++) {
    try {
      results.push(await bench(c.argv));
    } catch (err) {
      console.error(String(err));
    }
  }
  if (results.length === 0) {
    console.log(`| ${c.label} | \`halfmq bench ${c.argv.join(' ')}\` | failed | | | | | |`);
    continue;
  }
  const m = (f: (r: Result) => number): number => median(results.map(f));
  if (c.label === 'e2e at saturation') e2eSaturation = m((r) => r.msgsPerSec);
  console.log(
    `| ${c.label} | \`halfmq bench ${c.argv.join(' ')}\` | ${m((r) => r.msgsPerSec)} [${results.map((r) => r.msgsPerSec).join(', ')}] | ${m((r) => r.mbPerSec)} | ` +
      `${m((r) => r.latencyMs.p50)} | ${m((r) => r.latencyMs.p90)} | ${m((r) => r.latencyMs.p99)} | ${m((r) => r.latencyMs.max)} |`,
  );
}
