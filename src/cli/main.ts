import { BENCH_CLIENT_FLAGS, hasHeapFloor, relaunchWith } from './heap-floor.js';
import { run } from './program.js';

/**
 * Process entry of the `halfmq` command (bin/halfmq imports the compiled form of this file).
 * Commands shut their clients down, so the process exits on its own; the unref'd timer is only a
 * safety net should a handle linger, and never delays a clean exit.
 */
// `halfmq topic list | head` closes our stdout early: that is the reader's choice, not a failure.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

// `halfmq bench` is itself a busy client of the SDK, so it runs with the heap settings the README asks
// of such processes (unless started with a floor of its own); other commands are brief and start as they are.
const relaunch = process.argv[2] === 'bench' && !hasHeapFloor();
const code = relaunch ? await relaunchWith(BENCH_CLIENT_FLAGS, process.argv[1]!, process.argv.slice(2)) : await run(process.argv);
process.exitCode = code;
setTimeout(() => process.exit(code), 2_000).unref();
