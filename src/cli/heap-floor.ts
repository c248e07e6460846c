import { spawn } from 'node:child_process';
import { constants } from 'node:os';

/**
 * Node flags for a halfmq process that moves tens of thousands of messages a second: a broker
 * (`npm start` and `halfmq bench --embedded` pass them) and `halfmq bench`'s own client. The floor
 * under V8's old-generation limit stops a full mark-compact every 100-300 ms under load: V8
 * otherwise sets the limit a few MB above the small live heap, and the marking steps of each cycle
 * (up to 10 ms) land in send and delivery latency. Measured on a broker at 15,000 msgs/s: 13-22
 * full GCs in 6 s -> 2, e2e p99 25-36 ms -> 6-20 ms; on the bench client at 28,500 msgs/s: 18-22
 * full GCs a run -> 1, e2e p99 lower in 12 of 13 alternating pairs. V8 reads it only at start-up,
 * so a process cannot set it for itself.
 */
export const HEAP_FLOOR_FLAGS: readonly string[] = ['--initial-old-space-size=128'];

/**
 * `halfmq bench`'s own client also gets a larger young generation: it sends and consumes at once, and
 * every scavenge pauses both. e2e p99 at 28,500 msgs/s with it against the floor alone was lower in
 * 7 of 7 alternating pairs (e.g. 21.1 -> 13.3, 60.4 -> 21.1 ms). On the broker it was not (worse in
 * 3 of 3 pairs), so the broker keeps the floor alone.
 */
export const BENCH_CLIENT_FLAGS: readonly string[] = [...HEAP_FLOOR_FLAGS, '--max-semi-space-size=32'];

/** Whether this process was started with an old-generation floor (NODE_OPTIONS cannot carry one). */
export function hasHeapFloor(execArgv: readonly string[] = process.execArgv): boolean {
  return execArgv.some((flag) => flag.startsWith('--initial-old-space-size'));
}

/**
 * Runs `script args` again in a node started with `flags` (and this node's own), with this
 * process's stdio, and resolves with its exit code. SIGINT and SIGTERM sent to this process reach
 * the child.
 */
export function relaunchWith(flags: readonly string[], script: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...flags, ...process.execArgv, script, ...args], { stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const done = (): void => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
    };
    child.once('error', (err) => {
      done();
      reject(err);
    });
    child.once('exit', (code, signal) => {
      done();
      resolve(code ?? 128 + (signal !== null ? constants.signals[signal] : 0));
    });
  });
}
