import { InternalError } from '../common/errors.js';

/** What one item of a merged request came to: its own value, or its own error. */
export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

export interface CoalescerLimits {
  /** most items in one merged request */
  maxItems: number;
  /** a merged request goes out as soon as its items reach this many bytes */
  maxBytes: number;
}

interface Pending<I, R> {
  item: I;
  resolve: (value: R) => void;
  reject: (err: unknown) => void;
}

/**
 * Merges the calls of one tick into few requests: items added while the current callbacks and their
 * promise chains run go out together on the next tick, or earlier in parts of `maxBytes` / `maxItems`,
 * so that a large window still makes several requests in flight (the broker stores one while the
 * client encodes the next). `send` answers every item of a part, in order; a rejection of `send`
 * itself fails every item of that part.
 */
export class RequestCoalescer<I, R> {
  private readonly send: (items: I[]) => Promise<Settled<R>[]>;
  private readonly limits: CoalescerLimits;
  private pending: Pending<I, R>[] = [];
  private pendingBytes = 0;
  private scheduled = false;

  constructor(send: (items: I[]) => Promise<Settled<R>[]>, limits: CoalescerLimits) {
    this.send = send;
    this.limits = limits;
  }

  add(item: I, bytes: number): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.pendingBytes += bytes;
      if (this.pendingBytes >= this.limits.maxBytes || this.pending.length >= this.limits.maxItems) {
        this.flush();
      } else if (!this.scheduled) {
        this.scheduled = true;
        process.nextTick(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const part = this.pending;
    if (part.length === 0) return;
    this.pending = [];
    this.pendingBytes = 0;
    this.send(part.map((p) => p.item)).then(
      (outcomes) => {
        part.forEach((p, i) => {
          const outcome = outcomes[i];
          if (outcome === undefined) p.reject(new InternalError(`no answer for item ${i} of a merged request of ${part.length}`));
          else if (outcome.ok) p.resolve(outcome.value);
          else p.reject(outcome.error);
        });
      },
      (err: unknown) => {
        for (const p of part) p.reject(err);
      },
    );
  }
}
