import { Command } from 'commander';
import { InvalidArgumentError } from '../common/errors.js';
import { startBrokerProcess, removeDataDir } from './broker-process.js';
import type { BrokerProcess } from './broker-process.js';
import { SCENARIOS, resolveBenchOptions } from './bench/options.js';
import type { BenchFlags, BenchOptions } from './bench/options.js';
import { disk } from './bench/disk.js';
import { onInterrupt } from './bench/interrupt.js';
import { silentProgress, terminalProgress } from './bench/progress.js';
import { recovery, restartOnSameDir } from './bench/recovery.js';
import { consume, e2e, produce } from './bench/scenarios.js';
import type { BenchResult, ScenarioContext } from './bench/scenarios.js';
import { txScenario, checkScenario, CHECK_BROKER_ARGS } from './bench/transactions.js';
import { formatTable, processIo, toJson } from './output.js';
import type { CliIo } from './output.js';

/** `halfmq bench <scenario>`: load scenarios against a broker (yours with --server, or one it starts). */
export function benchCommand(io: CliIo): Command {
  return new Command('bench')
    .description(`measure throughput and latency: ${SCENARIOS.join(' | ')}`)
    .argument('<scenario>', SCENARIOS.join(' | '))
    .option('--server <host:port>', 'benchmark this broker (its own flush setting applies)')
    .option('--embedded', 'start a broker process on 127.0.0.1 in a temporary directory (the default without --server)')
    .option('--messages <n>', 'messages (transactions for tx/check) in the measured phase; default 100000, check 10000')
    .option('--size <bytes>', 'message body size, e.g. 1024 or 4KiB (default 1024)')
    .option('--concurrency <n>', 'requests in flight (default 256; consume: pulls in flight, default 4)')
    .option('--batch <n>', 'messages per send request (default 1; consume: most messages per pull, default 256)')
    .option('--flush <mode>', 'flush of the --embedded broker: sync (ack after fdatasync) or async (default sync)')
    .option('--duration <seconds>', 'stop the measured phase after this long even if not all messages are done (default 60)')
    .option('--rate <msgs/s>', 'e2e: send at this fixed rate instead of at saturation; disk: records/s of its group commit (default 10000)')
    .option('--queues <n>', 'queues of the benchmark topic (default 8)')
    .option('--log-bytes <bytes>', 'recovery only: commit log to write before kill -9 (default 1GiB)')
    .option('--dir <path>', 'disk only: the directory whose file system to measure (default the OS temp dir, where --embedded brokers keep data)')
    .option('--json', 'print one JSON object instead of the table')
    .addHelpText(
      'after',
      '\nScenarios:\n' +
        '  produce   acknowledged sends, --concurrency in flight, --batch messages per request\n' +
        '  consume   drain a pre-filled topic (pre-fill not timed); latency is per PULL round trip\n' +
        '  e2e       send-to-handler latency through a PushConsumer, at saturation or at --rate\n' +
        '  tx        transactions (half + commit, both durable) per second\n' +
        '  check     time to resolve --messages orphaned transactions by check-back (--embedded)\n' +
        '  recovery  restart time after kill -9 with --log-bytes of log (--embedded)\n' +
        '  disk      no broker: the file system alone (256 KiB append + fdatasync MB/s, 1 KiB fdatasync\n' +
        '            latency, and group-committed O_DSYNC writes of records arriving at --rate): the floor\n' +
        '            under every durable number above\n' +
        '\n--json prints { scenario, messages, seconds, msgsPerSec, mbPerSec, latencyMs: { p50, p90, p99, max }, details }.\n' +
        'Examples:\n' +
        '  halfmq bench produce --messages 200000 --concurrency 256\n' +
        '  halfmq bench produce --concurrency 1 --messages 5000      # one-at-a-time latency\n' +
        '  halfmq bench e2e --rate 20000 --json\n' +
        '  halfmq bench disk --rate 20000 --dir /var/lib/halfmq   # what that disk allows at 20,000/s\n' +
        '  halfmq bench produce --server 127.0.0.1:9876',
    )
    .action(async (scenario: string, flags: BenchFlags) => {
      const options = resolveBenchOptions(scenario, flags);
      const progress = !options.json && io === processIo ? terminalProgress() : silentProgress;
      const r = await runBench(options, progress, (line) => io.err(line));
      // The client's heap settings move the latencies it measures (see heap-floor.ts).
      r.details = { ...r.details, nodeFlags: process.execArgv.join(' ') };
      if (options.json) io.out(toJson(r));
      else for (const line of formatResult(r, options)) io.out(line);
    });
}

/** Runs one scenario, starting and removing an embedded broker when asked to. */
export async function runBench(options: BenchOptions, progress: ScenarioContext['progress'], note: (line: string) => void): Promise<BenchResult> {
  let broker: BrokerProcess | undefined;
  let endpoints = '';
  const extraArgs = options.scenario === 'check' ? CHECK_BROKER_ARGS : [];
  let stopOnInterrupt = (): void => undefined;
  try {
    if (options.target.kind === 'embedded') {
      const starting = startBrokerProcess({ flush: options.target.flush, args: extraArgs });
      // Stopped half way (Ctrl-C, SIGTERM), even while the broker starts, the run must not leave its
      // broker running or its data behind.
      stopOnInterrupt = onInterrupt(async () => {
        progress.done();
        const b = broker ?? (await starting.catch(() => undefined));
        if (b === undefined) return;
        note(`stopping the embedded broker (pid ${b.pid}) and removing ${b.dataDir}`);
        await b.stop();
        await removeDataDir(b.dataDir);
      });
      broker = await starting;
      endpoints = broker.endpoints;
    } else if (options.target.kind === 'server') {
      endpoints = options.target.address;
    }
    const ctx: ScenarioContext = { endpoints, options, progress };
    switch (options.scenario) {
      case 'disk':
        return await disk(ctx);
      case 'produce':
        return await produce(ctx);
      case 'consume':
        return await consume(ctx);
      case 'e2e':
        return await e2e(ctx);
      case 'tx':
        return await txScenario(ctx);
      case 'check':
        return await checkScenario(ctx);
      case 'recovery': {
        const flush = options.target.kind === 'embedded' ? options.target.flush : 'sync';
        const out = await recovery(ctx, broker!, restartOnSameDir(flush, extraArgs));
        broker = out.broker;
        return out.result;
      }
    }
    throw new InvalidArgumentError(`unknown scenario ${String(options.scenario)}`);
  } catch (err) {
    if (broker !== undefined) note(`broker log (last lines):\n${broker.log().split('\n').slice(-15).join('\n')}`);
    throw err;
  } finally {
    stopOnInterrupt();
    progress.done();
    if (broker !== undefined) {
      await broker.stop();
      await removeDataDir(broker.dataDir);
    }
  }
}

export function formatResult(r: BenchResult, o: BenchOptions): string[] {
  const where =
    o.target.kind === 'embedded' ? `embedded broker (flush ${o.target.flush})` : o.target.kind === 'server' ? `broker at ${o.target.address}` : 'no broker';
  const lines = [
    o.target.kind === 'none'
      ? `halfmq bench ${r.scenario}: ${where}, ${o.size} B records at ${o.rate} records/s in ${o.dir ?? 'the OS temp dir'}`
      : `halfmq bench ${r.scenario}: ${where}, ${o.size} B messages, concurrency ${o.concurrency}, batch ${o.batch}`,
  ];
  lines.push(
    ...formatTable(
      ['messages', 'seconds', 'msgs/s', 'MB/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
      [[r.messages, r.seconds.toFixed(2), r.msgsPerSec, r.mbPerSec.toFixed(1), fmt(r.latencyMs.p50), fmt(r.latencyMs.p90), fmt(r.latencyMs.p99), fmt(r.latencyMs.max)]],
    ),
  );
  if (r.details !== undefined) lines.push(`details: ${toJson(r.details)}`);
  return lines;
}

function fmt(ms: number): string {
  return ms < 10 ? ms.toFixed(3) : ms.toFixed(1);
}
