import { describe, expect, it } from 'vitest';
import { RequestCoalescer, type Settled } from '../../../src/common/request-coalescer.js';

/** A coalescer whose requests are recorded and answered by `answer`. */
function recording(answer: (items: number[]) => Promise<Settled<string>[]>, limits = { maxItems: 100, maxBytes: 1000 }) {
  const requests: number[][] = [];
  const coalescer = new RequestCoalescer<number, string>((items) => {
    requests.push(items);
    return answer(items);
  }, limits);
  return { requests, coalescer };
}

const echo = async (items: number[]): Promise<Settled<string>[]> => items.map((i) => ({ ok: true, value: `r${i}` }));

describe('RequestCoalescer', () => {
  it('merges the calls of one tick into one request, each caller getting its own answer in order', async () => {
    const { requests, coalescer } = recording(echo);
    const answers = await Promise.all([1, 2, 3].map((i) => coalescer.add(i, 10)));
    expect(answers).toEqual(['r1', 'r2', 'r3']);
    expect(requests).toEqual([[1, 2, 3]]);
    // a later tick makes a new request
    expect(await coalescer.add(4, 10)).toBe('r4');
    expect(requests).toEqual([[1, 2, 3], [4]]);
  });

  it('sends a part as soon as it reaches maxItems or maxBytes, so a large window makes several requests', async () => {
    const { requests, coalescer } = recording(echo, { maxItems: 2, maxBytes: 25 });
    await Promise.all([coalescer.add(1, 1), coalescer.add(2, 1), coalescer.add(3, 20), coalescer.add(4, 10), coalescer.add(5, 1)]);
    expect(requests).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('fails only the item the answer fails, and every item when the request itself fails', async () => {
    const failing = new Error('item 2 refused');
    const { coalescer } = recording(async (items) => items.map((i) => (i === 2 ? { ok: false, error: failing } : { ok: true, value: `r${i}` })));
    const outcomes = await Promise.allSettled([1, 2, 3].map((i) => coalescer.add(i, 1)));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBe(failing);

    const down = new Error('connection lost');
    const { coalescer: broken } = recording(() => Promise.reject(down));
    const all = await Promise.allSettled([1, 2].map((i) => broken.add(i, 1)));
    expect(all.map((o) => (o as PromiseRejectedResult).reason)).toEqual([down, down]);
  });

  it('rejects an item the answer left out instead of leaving it pending', async () => {
    const { coalescer } = recording(async () => [{ ok: true, value: 'only one' }]);
    const outcomes = await Promise.allSettled([coalescer.add(1, 1), coalescer.add(2, 1)]);
    expect(outcomes[0]).toEqual({ status: 'fulfilled', value: 'only one' });
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'INTERNAL' });
  });
});
