#!/usr/bin/env node
// Orchestration of the peer comparison. run.sh starts / stops the servers and
// calls this once per system, then once more to print the report:
//
//   node run.mjs peer   --system redis|rabbitmq|nats|postgres --port P --out FILE [opts]
//   node run.mjs halfmq --out FILE [opts]
//   node run.mjs skip   --system NAME --reason TEXT --out FILE
//   node run.mjs report --dir DIR [--json]
//
// opts: --messages N (default 50000) --single N (default 2000) --size B (1024)
//       --concurrency C (256) --max-seconds S (60) --version TEXT
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { log, fmtInt, runStandard } from './common.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
export const ORDER = ['halfmq', 'redis', 'rabbitmq', 'nats', 'postgres'];
const LABELS = {
  halfmq: 'halfmq',
  redis: 'Redis streams',
  rabbitmq: 'RabbitMQ quorum queue',
  nats: 'NATS JetStream',
  postgres: 'PostgreSQL outbox',
};

const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    system: { type: 'string' },
    port: { type: 'string' },
    out: { type: 'string' },
    dir: { type: 'string' },
    reason: { type: 'string' },
    version: { type: 'string', default: '' },
    messages: { type: 'string', default: '50000' },
    single: { type: 'string', default: '2000' },
    size: { type: 'string', default: '1024' },
    concurrency: { type: 'string', default: '256' },
    'max-seconds': { type: 'string', default: '60' },
    json: { type: 'boolean', default: false },
  },
});
const mode = positionals[0];
const opts = {
  messages: Number(a.messages),
  singleMessages: Number(a.single),
  size: Number(a.size),
  concurrency: Number(a.concurrency),
  maxSeconds: Number(a['max-seconds']),
};
for (const [k, v] of Object.entries(opts)) if (!Number.isFinite(v) || v <= 0) throw new Error(`bad --${k}: ${v}`);

// Whatever happens, this process ends: 3 scenarios x max-seconds plus set-up.
setTimeout(() => {
  log(`watchdog: ${mode} ${a.system ?? ''} still running after its time budget, exiting`);
  process.exit(3);
}, (opts.maxSeconds * 5 + 120) * 1000).unref();

const write = (obj) => writeFileSync(a.out, `${JSON.stringify(obj, null, 2)}\n`);

async function runPeer() {
  const system = a.system;
  const mod = await import(`./${system}.mjs`);
  const label = system;
  const rec = { system, version: a.version, durability: mod.durability, params: opts, loadAvgAtStart: loadavg()[0] };
  let driver;
  try {
    driver = await mod.connect({ port: Number(a.port) });
    Object.assign(rec, await runStandard(driver, { ...opts, label }));
    if (system === 'postgres') {
      rec.tx = { msgsPerSec: rec.produce.msgsPerSec, note: 'outbox produce = one business transaction per message' };
      rec.poolSize = mod.POOL_SIZE;
      rec.mode = mod.MODE;
    }
  } catch (e) {
    rec.error = String(e?.stack ?? e);
    log(`${system}: FAILED: ${e?.message ?? e}`);
  } finally {
    await driver?.close().catch((e) => log(`${system}: close: ${e.message}`));
  }
  write(rec);
}

function halfmqCli(args) {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin', 'halfmq'), 'bench', ...args, '--json'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('error', rej);
    p.on('close', (code) => {
      if (code !== 0) return rej(new Error(`halfmq bench ${args.join(' ')} exited ${code}`));
      const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      try {
        res(JSON.parse(line));
      } catch {
        rej(new Error(`halfmq bench ${args[0]}: no JSON in output: ${out.slice(0, 300)}`));
      }
    });
  });
}

async function runHalfmq() {
  const common = ['--embedded', '--flush', 'sync', '--size', String(opts.size), '--duration', String(opts.maxSeconds)];
  const txMessages = Math.max(500, Math.round(opts.messages * 0.4));
  const rec = {
    system: 'halfmq',
    version: a.version,
    durability: 'embedded broker, --flush sync: ack after fdatasync (group commit)',
    params: { ...opts, txMessages },
    loadAvgAtStart: loadavg()[0],
  };
  const show = (what, r) =>
    log(`halfmq: ${what} ${fmtInt(r.msgsPerSec)} msgs/s p50 ${r.latencyMs.p50} ms p99 ${r.latencyMs.p99} ms`);
  try {
    const c = ['--concurrency', String(opts.concurrency)];
    rec.produce = await halfmqCli(['produce', ...common, ...c, '--messages', String(opts.messages)]);
    show(`produce c=${opts.concurrency}`, rec.produce);
    rec.single = await halfmqCli(['produce', ...common, '--concurrency', '1', '--messages', String(opts.singleMessages)]);
    show('produce c=1', rec.single);
    rec.e2e = await halfmqCli(['e2e', ...common, ...c, '--messages', String(opts.messages)]);
    show('e2e', rec.e2e);
    rec.tx = await halfmqCli(['tx', ...common, ...c, '--messages', String(txMessages)]);
    show('tx', rec.tx);
  } catch (e) {
    rec.error = String(e?.stack ?? e);
    log(`halfmq: FAILED: ${e?.message ?? e}`);
  }
  write(rec);
}

const ms = (x) => (x == null ? 'n/a' : x < 10 ? x.toFixed(2) : x.toFixed(1));
const ratio = (h, p) => (h && p ? `${(h / p).toFixed(2)}x` : 'n/a');

function report() {
  const recs = readdirSync(a.dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(a.dir, f), 'utf8')))
    .sort((x, y) => ORDER.indexOf(x.system) - ORDER.indexOf(y.system));
  const h = recs.find((r) => r.system === 'halfmq' && !r.error && !r.skipped);
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, date: new Date().toISOString() };
  if (a.json) {
    process.stdout.write(`${JSON.stringify({ machine, params: opts, systems: recs }, null, 2)}\n`);
    return;
  }
  const lines = [];
  lines.push(
    `${machine.cpus} cores (${machine.cpuModel}), Node ${machine.node}; client and server on the same machine; ` +
      `${fmtInt(opts.messages)} msgs of ${opts.size} B, ${opts.concurrency} in flight; one-at-a-time: ${fmtInt(opts.singleMessages)} sends, concurrency 1.`,
  );
  lines.push('');
  lines.push('| system | durability setting | produce msgs/s | halfmq/peer produce | one-at-a-time p50 ms | e2e msgs/s | halfmq/peer e2e | e2e p99 ms | tx/s |');
  lines.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of recs) {
    const name = `${LABELS[r.system] ?? r.system}${r.version ? ` ${r.version}` : ''}`;
    if (r.skipped || r.error) {
      const why = (r.skipped ? `skipped: ${r.reason}` : `failed: ${r.error.split('\n')[0]}`).replace(/\|/g, '/');
      lines.push(`| ${name} | ${why} | | | | | | | |`);
      continue;
    }
    const tx = r.tx?.msgsPerSec != null ? fmtInt(r.tx.msgsPerSec) : 'n/a';
    lines.push(
      `| ${name} | ${r.durability} | ${fmtInt(r.produce?.msgsPerSec)} | ${ratio(h?.produce?.msgsPerSec, r.produce?.msgsPerSec)} | ` +
        `${ms(r.single?.latencyMs?.p50)} | ${fmtInt(r.e2e?.msgsPerSec)} | ${ratio(h?.e2e?.msgsPerSec, r.e2e?.msgsPerSec)} | ` +
        `${ms(r.e2e?.latencyMs?.p99)} | ${tx} |`,
    );
  }
  lines.push('');
  lines.push('halfmq/peer > 1.00x means halfmq is faster. tx/s: halfmq `bench tx` (half + commit, both durable); PostgreSQL: its produce number (one outbox transaction per message); n/a where the system has no transactional send.');
  const loads = recs.filter((r) => r.loadAvgAtStart != null).map((r) => `${r.system} ${r.loadAvgAtStart.toFixed(2)}`);
  if (loads.length) lines.push(`1-min load average at the start of each system (2 cores; includes the tail of the previous system's run and any other work on the machine): ${loads.join(', ')}.`);
  const timed = recs.filter((r) => ['produce', 'single', 'e2e'].some((k) => r[k]?.details?.timedOut));
  if (timed.length) lines.push(`Time limit (${opts.maxSeconds} s) hit by: ${timed.map((r) => r.system).join(', ')} — their numbers cover fewer messages.`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

switch (mode) {
  case 'peer':
    await runPeer();
    break;
  case 'halfmq':
    await runHalfmq();
    break;
  case 'skip':
    write({ system: a.system, version: a.version, skipped: true, reason: a.reason ?? 'skipped' });
    break;
  case 'report':
    report();
    break;
  default:
    throw new Error(`unknown mode ${mode}; see the header of run.mjs`);
}
process.exit(0);
