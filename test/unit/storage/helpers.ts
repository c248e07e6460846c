import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordType, type RecordInput } from '../../../src/storage/index.js';

/** Temp directories made by a test file; `cleanup()` in afterEach/afterAll removes them. */
export function tempDirs(): { make: () => Promise<string>; cleanup: () => Promise<void> } {
  const made: string[] = [];
  return {
    make: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'halfmq-'));
      made.push(dir);
      return dir;
    },
    cleanup: async () => {
      await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
    },
  };
}

let counter = 0;

export function rec(overrides: Partial<RecordInput> & { text?: string } = {}): RecordInput {
  const { text, ...rest } = overrides;
  counter++;
  return {
    type: RecordType.NORMAL,
    topic: 'orders',
    queueId: 0,
    msgId: `MSG${String(counter).padStart(8, '0')}`,
    keys: [],
    properties: {},
    body: Buffer.from(text ?? `body-${counter}`),
    bornTimestamp: 1_700_000_000_000 + counter,
    reconsumeTimes: 0,
    ...rest,
  };
}

export type LogLine = { level: string; message: string; context?: Record<string, unknown> };

export function captureLog(): { lines: LogLine[]; log: (level: 'info' | 'warn' | 'error', message: string, context?: Record<string, unknown>) => void } {
  const lines: LogLine[] = [];
  return { lines, log: (level, message, context) => lines.push({ level, message, context }) };
}

/**
 * Snapshot of a live data dir into `copy`: what a kill -9 leaves behind (page cache included). A
 * copy is not atomic, so parts are copied in an order a real crash could produce: the checkpoint
 * first (it may only be older than the queues), queues before the log (an entry is written after
 * its record).
 */
export async function crashCopy(dataDir: string, copy: string): Promise<string> {
  const order = ['checkpoint', 'consumequeue', 'commitlog'];
  const names = await readdir(dataDir);
  for (const name of [...order.filter((n) => names.includes(n)), ...names.filter((n) => !order.includes(n))]) {
    // A file can vanish between the listing and the copy (checkpoint.tmp is renamed into place by
    // a concurrent checkpoint); a crash at that instant would not have it either.
    await cp(join(dataDir, name), join(copy, name), { recursive: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
  return copy;
}
