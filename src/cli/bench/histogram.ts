/**
 * A log-bucketed latency histogram in the style of HdrHistogram: values (microseconds, integers)
 * below 256 are counted exactly; above, each power-of-two range is split into 128 equal buckets, so
 * a reported percentile is within 0.8% of the true value. Recording is O(1) and allocation-free;
 * memory is fixed (~40 KiB) whatever the number of samples, so a benchmark can record every one.
 */
const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // 128 buckets per power of two
const EXACT = SUB * 2; // values below this get a bucket each
const MAX_VALUE = 2 ** 31 - 1; // ~35 minutes in µs; larger values are clamped (and counted)
const BUCKETS = EXACT + (31 - SUB_BITS) * SUB;

export function bucketIndex(value: number): number {
  if (value < EXACT) return value;
  const msb = 31 - Math.clz32(value);
  const shift = msb - SUB_BITS;
  return EXACT + (shift - 1) * SUB + ((value >>> shift) - SUB);
}

/** The largest value that falls in the bucket (what HdrHistogram calls the highest equivalent value). */
export function bucketHighest(index: number): number {
  if (index < EXACT) return index;
  const shift = Math.floor((index - EXACT) / SUB) + 1;
  const top = ((index - EXACT) % SUB) + SUB;
  return ((top + 1) * 2 ** shift) - 1;
}

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  private minValue = Infinity;
  private maxValue = 0;
  private sum = 0;

  /** Records one value in microseconds (negative values count as 0). */
  record(micros: number): void {
    let v = Math.round(micros);
    if (!(v > 0)) v = 0;
    if (v > MAX_VALUE) v = MAX_VALUE;
    this.counts[bucketIndex(v)]!++;
    this.total++;
    this.sum += v;
    if (v < this.minValue) this.minValue = v;
    if (v > this.maxValue) this.maxValue = v;
  }

  /** Records a duration given in milliseconds (e.g. a difference of performance.now() values). */
  recordMs(ms: number): void {
    this.record(ms * 1000);
  }

  get count(): number {
    return this.total;
  }

  get max(): number {
    return this.maxValue;
  }

  get min(): number {
    return this.total === 0 ? 0 : this.minValue;
  }

  get mean(): number {
    return this.total === 0 ? 0 : this.sum / this.total;
  }

  /** The value at percentile p (0-100], in microseconds: the smallest bucket covering p% of samples. */
  percentile(p: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil((Math.min(100, Math.max(0, p)) / 100) * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(bucketHighest(i), this.maxValue);
    }
    return this.maxValue;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i]!;
    this.total += other.total;
    this.sum += other.sum;
    if (other.total > 0) {
      this.minValue = Math.min(this.minValue, other.minValue);
      this.maxValue = Math.max(this.maxValue, other.maxValue);
    }
  }

  /** p50/p90/p99/max in milliseconds, rounded to the microsecond. */
  summaryMs(): { p50: number; p90: number; p99: number; max: number } {
    const ms = (us: number): number => Math.round(us) / 1000;
    return { p50: ms(this.percentile(50)), p90: ms(this.percentile(90)), p99: ms(this.percentile(99)), max: ms(this.maxValue) };
  }
}
