import { describe, expect, it } from 'vitest';
import { MinHeap } from '../../../src/common/min-heap.js';

describe('MinHeap', () => {
  it('pops in key order through interleaved pushes and pops, ties included', () => {
    let seed = 12345;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const heap = new MinHeap<string>();
    const model: { key: number; value: string }[] = [];
    for (let step = 0; step < 5000; step++) {
      if (model.length === 0 || random() < 0.6) {
        const key = Math.floor(random() * 200); // many equal keys
        heap.push(key, `v${step}`);
        model.push({ key, value: `v${step}` });
      } else {
        const popped = heap.pop()!;
        const min = Math.min(...model.map((e) => e.key));
        expect(popped.key).toBe(min);
        // The value travels with its key.
        const at = model.findIndex((e) => e.key === popped.key && e.value === popped.value);
        expect(at).toBeGreaterThanOrEqual(0);
        model.splice(at, 1);
      }
      expect(heap.size).toBe(model.length);
      expect(heap.peekKey()).toBe(model.length === 0 ? undefined : Math.min(...model.map((e) => e.key)));
    }
    while (heap.size > 0) heap.pop();
    expect(heap.pop()).toBeUndefined();
  });
});
