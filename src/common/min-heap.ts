/**
 * A binary min-heap ordered by `key`; O(log n) push and pop. Keys and values sit in two parallel
 * arrays, not in an object per entry: the transaction table pushes one entry per transaction, and
 * each lives for seconds, long enough to be promoted and swept by a major GC.
 */
export class MinHeap<T> {
  private readonly keys: number[] = [];
  private readonly values: T[] = [];

  /** Drops every entry. */
  clear(): void {
    this.keys.length = 0;
    this.values.length = 0;
  }

  get size(): number {
    return this.keys.length;
  }

  peekKey(): number | undefined {
    return this.keys[0];
  }

  push(key: number, value: T): void {
    const { keys, values } = this;
    let i = keys.length;
    keys.push(key);
    values.push(value);
    // Sift up: move parents down until the new entry's place is found, then write it once.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent]! <= key) break;
      keys[i] = keys[parent]!;
      values[i] = values[parent]!;
      i = parent;
    }
    keys[i] = key;
    values[i] = value;
  }

  pop(): { key: number; value: T } | undefined {
    const { keys, values } = this;
    if (keys.length === 0) return undefined;
    const top = { key: keys[0]!, value: values[0]! };
    const lastKey = keys.pop()!;
    const lastValue = values.pop()!;
    const n = keys.length;
    if (n === 0) return top;
    // Sift the last entry down from the root.
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const m = r < n && keys[r]! < keys[l]! ? r : l;
      if (keys[m]! >= lastKey) break;
      keys[i] = keys[m]!;
      values[i] = values[m]!;
      i = m;
    }
    keys[i] = lastKey;
    values[i] = lastValue;
    return top;
  }
}
