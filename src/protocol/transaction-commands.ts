import type { WireError } from '../common/errors.js';
import type { WireDeliveredMessage, WireOutgoingMessage } from './commands.js';

/**
 * Payloads of the transaction commands (codes in commands.ts, 40-49).
 *
 *   SEND_HALF        c→b  { transactionId, group, messages, checkImmunityMs? } + bodies
 *                         → { results }            half messages stored durably, invisible
 *   END_TRANSACTION  c→b  { transactionId, resolution, source? }
 *                         → { state, changed }     first resolution wins; the same one again is a
 *                                                   no-op (changed=false); a conflicting one fails
 *                                                   with TX_CONFLICT
 *   CHECK_TRANSACTION_STATE  b→c  { transactionId, group, checkTimes, messages } + bodies
 *                         → { resolution }         asked of a live producer of the group when a
 *                                                   transaction stays PREPARED past its timeout
 *   LIST_TRANSACTIONS c→b { state?, limit? } → { transactions }
 *   GET_TRANSACTION   c→b { transactionId } → TransactionInfo
 *   SEND_HALF_BATCH   c→b { group, txs: [{ transactionId, messages, checkImmunityMs? }] } + the bodies
 *                         of every message in order → { results: [{ results } | { e }] }
 *                         or (RECORD_HALF) { group, records: n } + n half records, each run of the
 *                         same __TX_ID one transaction (SEND_HALF too takes `records: n`)
 *   END_TRANSACTION_BATCH c→b { ends: [{ transactionId, resolution, source? }], cr? }
 *                         or (END_LISTS) { commit: [transactionId], rollback: [transactionId], cr? },
 *                         the producer's ends, answered in that order (commit's, then rollback's)
 *                         → { results: [{ state, changed } | { e }] }, or with cr: [changed | { e }]
 *                         (the state follows from the resolution asked for)
 *                         The batch forms carry many transactions of one producer in one frame
 *                         (a producer merges the calls of one tick); each transaction succeeds or
 *                         fails on its own, with the single form's meaning, in request order.
 */
export type TransactionResolution = 'COMMIT' | 'ROLLBACK';
export type LocalTransactionState = TransactionResolution | 'UNKNOWN';
export type TransactionState = 'PREPARED' | 'COMMITTED' | 'ROLLED_BACK' | 'PARKED';
/** Who ended a transaction. */
export type ResolutionSource = 'producer' | 'check' | 'operator';

export interface SendHalfRequest {
  transactionId: string;
  group: string;
  /** the messages, each with its body in the frame body; absent when `records` is given */
  messages?: WireOutgoingMessage[];
  /**
   * RECORD_HALF: instead of `messages`, this many unstamped commit-log records in the frame body
   * (as SEND `records`), each carrying the properties __TX_ID and __TX_GROUP of this transaction.
   * The broker checks them as it checks SEND records, and refuses a half whose id or group differs.
   */
  records?: number;
  /** no check before this long after the first half (on top of the broker's transaction timeout) */
  checkImmunityMs?: number;
  /** Compact: answer `{}`, no result per message (the sender knows its ids; a half has no offset yet). */
  cr?: boolean;
}

export interface SendHalfResponse {
  /** one per message, unless the request asked for a compact answer */
  results?: { msgId: string; topic: string; queueId: number; queueOffset: number }[];
}

export interface EndTransactionRequest {
  transactionId: string;
  resolution: TransactionResolution;
  source?: ResolutionSource;
}

export interface EndTransactionResponse {
  state: TransactionState;
  /** false when the transaction already had this resolution */
  changed: boolean;
}

export interface SendHalfBatchRequest {
  group: string;
  /** one entry per transaction, its bodies in order in the frame body; absent when `records` is given */
  txs?: Omit<SendHalfRequest, 'group' | 'cr' | 'records'>[];
  /**
   * RECORD_HALF, instead of `txs`: this many unstamped half records in the frame body (as SEND
   * `records`), each carrying __TX_ID and __TX_GROUP. Each run of records with the same __TX_ID is
   * one transaction, answered in order; no check immunity. A record whose framing is broken fails
   * the frame; any other fault fails its transaction alone.
   */
  records?: number;
  /** compact answers for every transaction (see SendHalfRequest.cr) */
  cr?: boolean;
}

/** One entry per transaction of the request: its results, or why it failed. */
export type BatchOutcome<T> = T | { e: WireError };

export interface SendHalfBatchResponse {
  results: BatchOutcome<SendHalfResponse>[];
}

export interface EndTransactionBatchRequest {
  /** one entry per end, any resolutions and sources */
  ends?: EndTransactionRequest[];
  /**
   * END_LISTS, instead of `ends`: the producer's ends as lists of transaction ids (a map per end
   * was most of this request's encoding). The answers follow `[...commit, ...rollback]`.
   */
  commit?: string[];
  rollback?: string[];
  /**
   * Compact: answer each end with its `changed` alone. The state is the one its resolution leads
   * to (COMMITTED, ROLLED_BACK): an end that cannot get there fails instead.
   */
  cr?: boolean;
}

export interface EndTransactionBatchResponse {
  results: BatchOutcome<EndTransactionResponse | boolean>[];
}

/** The state an end with this resolution leaves its transaction in when it succeeds. */
export const RESOLVED_STATE: Readonly<Record<TransactionResolution, TransactionState>> = { COMMIT: 'COMMITTED', ROLLBACK: 'ROLLED_BACK' };

export interface CheckTransactionRequest {
  transactionId: string;
  group: string;
  /** checks already sent before this one */
  checkTimes: number;
  messages: WireDeliveredMessage[];
}

export interface CheckTransactionResponse {
  resolution: LocalTransactionState;
}

export interface ListTransactionsRequest {
  state?: 'prepared' | 'parked' | 'all';
  limit?: number;
}

export interface TransactionInfo {
  transactionId: string;
  producerGroup: string;
  state: TransactionState;
  /** broker clock, ms */
  createdAt: number;
  checkTimes: number;
  /** when the next check is due (PREPARED only) */
  nextCheckAt?: number;
  resolvedAt?: number;
  resolvedBy?: ResolutionSource;
  messages: { msgId: string; topic: string; queueId: number; tag?: string; keys: string[] }[];
}

export interface ListTransactionsResponse {
  transactions: TransactionInfo[];
}

export interface TransactionRef {
  transactionId: string;
}
