import { mkdtemp, rm } from 'node:fs/promises';
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
