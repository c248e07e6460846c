import { TransactionConflictError } from '../common/errors.js';
import type { TransactionResolution, TransactionState } from '../protocol/transaction-commands.js';

/**
 * The transaction state machine, as a table. PREPARED is the only state checks run in; PARKED
 * means "checks exhausted, waiting for a human" and still accepts a resolution (from an operator,
 * or a producer that finally answers). The first resolution wins: the same one again is a no-op,
 * the other one is refused (RocketMQ accepts a late COMMIT after a check rolled back, #8158).
 *
 *               COMMIT        ROLLBACK       PARK
 *   PREPARED    COMMITTED     ROLLED_BACK    PARKED
 *   PARKED      COMMITTED     ROLLED_BACK    (no-op)
 *   COMMITTED   (no-op)       conflict       (no-op)
 *   ROLLED_BACK conflict      (no-op)        (no-op)
 */
export type TransactionEvent = TransactionResolution | 'PARK';

const NEXT: Record<TransactionState, Partial<Record<TransactionEvent, TransactionState>>> = {
  PREPARED: { COMMIT: 'COMMITTED', ROLLBACK: 'ROLLED_BACK', PARK: 'PARKED' },
  PARKED: { COMMIT: 'COMMITTED', ROLLBACK: 'ROLLED_BACK', PARK: 'PARKED' },
  COMMITTED: { COMMIT: 'COMMITTED', PARK: 'COMMITTED' },
  ROLLED_BACK: { ROLLBACK: 'ROLLED_BACK', PARK: 'ROLLED_BACK' },
};

export function isOpen(state: TransactionState): boolean {
  return state === 'PREPARED' || state === 'PARKED';
}

/** Where `event` takes a transaction in `state`; throws TransactionConflictError when it may not. */
export function transition(transactionId: string, state: TransactionState, event: TransactionEvent): { state: TransactionState; changed: boolean } {
  const next = NEXT[state][event];
  if (next === undefined) {
    throw new TransactionConflictError(`transaction ${transactionId} is already ${state}; ${event} refused`, {
      context: { transactionId, state, requested: event },
    });
  }
  return { state: next, changed: next !== state };
}
