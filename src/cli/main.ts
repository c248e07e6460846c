import { run } from './program.js';

/**
 * Process entry of the `halfmq` command (bin/halfmq imports the compiled form of this file).
 * Commands shut their clients down, so the process exits on its own; the unref'd timer is only a
 * safety net should a handle linger, and never delays a clean exit.
 */
const code = await run(process.argv);
process.exitCode = code;
setTimeout(() => process.exit(code), 2_000).unref();
