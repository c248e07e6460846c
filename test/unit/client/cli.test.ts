import { describe, expect, it } from 'vitest';
import { run } from '../../../src/cli/program.js';
import type { CliIo } from '../../../src/cli/output.js';
import { toJsonLine, toTextLine } from '../../../src/cli/consume-command.js';
import { parseProperties } from '../../../src/cli/send-command.js';

function capture(env: Record<string, string> = {}): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => void stdout.push(l), err: (l) => void stderr.push(l), env };
}

const argv = (...args: string[]) => ['node', 'halfmq', ...args];

describe('halfmq CLI', () => {
  it('documents every command in --help', async () => {
    const io = capture();
    expect(await run(argv('--help'), io)).toBe(0);
    const help = io.stdout.join('\n');
    for (const command of ['broker', 'topic', 'send', 'consume', 'group']) expect(help).toContain(command);
    expect(help).toContain('HALFMQ_SERVER');
  });

  it.each([
    [['frob'], "halfmq: unknown command 'frob' (INVALID_ARGUMENT)"],
    [['send', '--topic', 't'], "halfmq: required option '--body <text>' not specified (INVALID_ARGUMENT)"],
    [['send', '--topic', 't', '--body', 'x', '--count', '0'], /--count <n>' argument '0' is invalid/],
    [['send', '--topic', 't', '--body', 'x', '--property', 'novalue'], 'halfmq: --property expects key=value, got "novalue" (INVALID_ARGUMENT)'],
    [['topic', 'list', '--server', 'nohost'], /^halfmq: invalid endpoint "nohost".*\(INVALID_ARGUMENT\)$/],
    [['broker', '--flush', 'maybe'], 'halfmq: --flush must be sync or async, got "maybe" (INVALID_ARGUMENT)'],
  ])('%j prints one clear error line and exits 1', async (args, expected) => {
    const io = capture();
    expect(await run(argv(...args), io)).toBe(1);
    expect(io.stderr).toHaveLength(1);
    if (typeof expected === 'string') expect(io.stderr[0]).toBe(expected);
    else expect(io.stderr[0]).toMatch(expected);
  });

  it('reports an unreachable broker with its address', async () => {
    const io = capture({ HALFMQ_SERVER: '127.0.0.1:1' });
    expect(await run(argv('group', 'list'), io)).toBe(1);
    expect(io.stderr).toEqual(['halfmq: could not connect to broker at 127.0.0.1:1: ECONNREFUSED (CONNECTION_FAILED)']);
  });

  it('formats consumed messages', () => {
    const m = { msgId: 'a'.repeat(32), topic: 't', queueId: 1, queueOffset: 2, keys: ['k'], properties: { p: 'v' }, body: Buffer.from('hi\nthere'), bornTimestamp: 1, storeTimestamp: 2, reconsumeTimes: 0 };
    expect(toJsonLine(m)).toEqual({ msgId: m.msgId, topic: 't', queueId: 1, queueOffset: 2, tag: null, keys: ['k'], properties: { p: 'v' }, body: 'hi\nthere', bornTimestamp: 1, storeTimestamp: 2, reconsumeTimes: 0 });
    expect(toTextLine(m)).toBe(`${m.msgId}  t/1@2  tag=-  keys=k  props=p=v  "hi\\nthere"`);
    expect(parseProperties(['a=1', 'b=x=y'])).toEqual({ a: '1', b: 'x=y' });
  });
});
