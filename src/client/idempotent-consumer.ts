import { randomUUID } from 'node:crypto';
import { DuplicateInProgressError, InvalidArgumentError } from '../common/errors.js';
import type { ReceivedMessage } from '../common/message.js';
import { validateDuration } from './idempotency/store.js';
import type { IdempotencyStore } from './idempotency/store.js';

export { MemoryIdempotencyStore } from './idempotency/memory-store.js';
export type { MemoryIdempotencyStoreOptions } from './idempotency/memory-store.js';
export { LevelIdempotencyStore } from './idempotency/level-store.js';
export type { LevelIdempotencyStoreOptions, LevelLikeDatabase } from './idempotency/level-store.js';
export type { ClaimResult, IdempotencyStore } from './idempotency/store.js';

/** What the wrapper needs of a message: its id (the default key). Any ReceivedMessage has it. */
export type IdempotentMessage = Pick<ReceivedMessage, 'msgId'>;

export interface IdempotentOptions<M extends IdempotentMessage = ReceivedMessage> {
  store: IdempotencyStore;
  /**
   * The deduplication key. Default: `msg.msgId`, which is stable across redeliveries and send
   * retries. Use a business key (`(m) => m.keys[0]`) when the same fact may be sent twice as two
   * messages. Returning an empty string or undefined is an error (the message is not handled).
   */
  key?: (message: M) => string | undefined;
  /** How long a handled key is remembered. Default 24 h. */
  ttlMs?: number;
  /**
   * How long a claim lasts while the handler runs. A claim left by a crashed process blocks its key
   * this long; a handler that runs longer than this may see a duplicate run beside it. Keep it above
   * the handler's worst case. Default 60 s.
   */
  processingTimeoutMs?: number;
  /** Called when a delivery is skipped because its key was already handled. */
  onDuplicate?: (message: M, key: string) => void;
  /**
   * Called when the store fails to record a finished handler (or to release a failed one's
   * claim). The message is still acked: the work is done, and running it again would be worse
   * than a weaker memory of it. Default: a process warning.
   */
  onStoreError?: (error: unknown, message: M, key: string) => void;
}

/** 'processed': the handler ran and finished; 'duplicate': the key was already handled, skipped. */
export type IdempotentOutcome = 'processed' | 'duplicate';

/**
 * Thrown when another delivery of the same key is being handled right now (here or in another
 * consumer sharing the store). Retriable: the push consumer nacks the message and it comes again;
 * by then the other run has finished (→ skipped as a duplicate) or failed (→ this one runs).
 *
 * It is not in the broker's error table on purpose: it never travels on the wire.
 */
const DEFAULT_TTL_MS = 24 * 60 * 60_000;
const DEFAULT_PROCESSING_TIMEOUT_MS = 60_000;

/**
 * Wraps a message handler so it runs at most once per key (message id or business key), however
 * often the broker delivers the message. The result is a PushConsumer `handler`; with a
 * SimpleConsumer call it per message and ack when it resolves.
 *
 * Per delivery: claim the key in the store.
 * - 'new': run the handler. It returns → mark the key done (ack). It throws → release the claim
 *   and rethrow (nack; the redelivery runs the handler again).
 * - 'done': skip the handler and resolve (ack).
 * - 'processing': throw DuplicateInProgressError (nack), rather than ack a message whose first
 *   run may still fail.
 *
 * "At most once" holds as far as the store's memory does (its TTL, size bound, durability). When
 * the handler's effect lives in a database, recording the key in the same database transaction as
 * the effect is stronger still; see examples/order-points.
 *
 * @example
 * const store = new MemoryIdempotencyStore();
 * const consumer = new PushConsumer({
 *   endpoints, group: 'points', subscriptions: { orders: '*' },
 *   handler: idempotent(async (msg) => creditPoints(msg), { store, key: (m) => m.keys[0] }),
 * });
 */
export function idempotent<M extends IdempotentMessage = ReceivedMessage>(
  handler: (message: M) => unknown,
  options: IdempotentOptions<M>,
): (message: M) => Promise<IdempotentOutcome> {
  if (typeof handler !== 'function') throw new InvalidArgumentError('handler must be a function');
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('idempotent() needs options with a store');
  const { store } = options;
  if (
    store === null ||
    typeof store !== 'object' ||
    typeof store.begin !== 'function' ||
    typeof store.complete !== 'function' ||
    typeof store.abandon !== 'function'
  ) {
    throw new InvalidArgumentError('store must implement begin, complete and abandon');
  }
  if (options.key !== undefined && typeof options.key !== 'function') throw new InvalidArgumentError('key must be a function');
  const keyOf = options.key ?? ((m: M) => m.msgId);
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  const leaseMs = options.processingTimeoutMs ?? DEFAULT_PROCESSING_TIMEOUT_MS;
  validateDuration(ttlMs, 'ttlMs');
  validateDuration(leaseMs, 'processingTimeoutMs');
  const onStoreError =
    options.onStoreError ??
    ((error: unknown, _m: M, key: string) => {
      process.emitWarning(`idempotency store failed for key ${JSON.stringify(key)}: ${error instanceof Error ? error.message : String(error)}`, {
        code: 'HALFMQ_IDEMPOTENCY_STORE',
      });
    });

  return async (message: M): Promise<IdempotentOutcome> => {
    const key = keyOf(message);
    if (typeof key !== 'string' || key === '') {
      throw new InvalidArgumentError('the idempotency key function returned no key for this message', {
        context: { msgId: (message as Partial<IdempotentMessage>)?.msgId },
      });
    }
    const owner = randomUUID();
    const claim = await store.begin(key, owner, leaseMs);
    if (claim === 'done') {
      options.onDuplicate?.(message, key);
      return 'duplicate';
    }
    if (claim === 'processing') {
      throw new DuplicateInProgressError(`a delivery with idempotency key ${JSON.stringify(key)} is being handled right now; try again later`, { context: { key } });
    }
    try {
      await handler(message);
    } catch (err) {
      await store.abandon(key, owner).catch((storeErr: unknown) => onStoreError(storeErr, message, key));
      throw err;
    }
    await store.complete(key, owner, ttlMs).catch((storeErr: unknown) => onStoreError(storeErr, message, key));
    return 'processed';
  };
}
