import { Command } from '../protocol/commands.js';
import { packBodies } from '../protocol/message-codec.js';
import type { CheckTransactionRequest, CheckTransactionResponse } from '../protocol/transaction-commands.js';
import type { MessageStore } from '../storage/index.js';
import type { Session } from './context.js';
import { toWireDelivered } from './delivery-view.js';
import type { Logger } from './logger.js';
import type { Transaction, TransactionTable } from './transaction-table.js';
import type { TransactionService } from './transaction-service.js';

/** Checks in flight at once; more due ones wait for the next round. */
const MAX_CONCURRENT_CHECKS = 256;
/** The timer never sleeps longer than this, so a clock step or a missed wake-up costs little. */
const MAX_SLEEP_MS = 1_000;
/** Halves sent with one check (the checker needs the transaction, not every message of it). */
const MAX_MESSAGES_PER_CHECK = 16;

/**
 * Asks a live producer of the group about transactions still PREPARED past their time.
 *
 * Driven by one timer aimed at the earliest due check (a heap in the table): the work of a round
 * grows with the transactions that are due, not with all that were ever sent. Each check is its
 * own request with its own timeout, so a slow or failing producer delays only its transaction
 * (RocketMQ's check loop stops for everything behind one failure, #9500). A check counts when it
 * is sent or when no producer is connected; after `checkMax` unanswered checks the transaction
 * is PARKED for an operator.
 */
export class TransactionChecker {
  private readonly service: TransactionService;
  private readonly table: TransactionTable;
  private readonly store: MessageStore;
  private readonly producersOf: (group: string) => Session[];
  private readonly log: Logger;
  private readonly roundRobin = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private stopped = false;

  constructor(options: {
    service: TransactionService;
    table: TransactionTable;
    store: MessageStore;
    producersOf: (group: string) => Session[];
    log: Logger;
  }) {
    this.service = options.service;
    this.table = options.table;
    this.store = options.store;
    this.producersOf = options.producersOf;
    this.log = options.log;
  }

  start(): void {
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** A new transaction may be due earlier than the timer is set for. */
  poke(): void {
    if (!this.stopped) this.arm();
  }

  private arm(): void {
    clearTimeout(this.timer);
    const next = this.table.nextDueAt();
    // At the in-flight cap, due checks wait for answers: poll gently instead of spinning.
    const floor = this.inFlight >= MAX_CONCURRENT_CHECKS ? 10 : 0;
    const delay = next === undefined ? MAX_SLEEP_MS : Math.min(MAX_SLEEP_MS, Math.max(floor, next - Date.now()));
    this.timer = setTimeout(() => this.round(), delay);
    this.timer.unref();
  }

  private round(): void {
    if (this.stopped) return;
    const now = Date.now();
    const { checkMax } = this.service.timings;
    for (const tx of this.table.takeDue(now, Math.max(0, MAX_CONCURRENT_CHECKS - this.inFlight))) {
      if (tx.checkTimes >= checkMax) {
        this.service.park(tx.id).catch((err: unknown) => this.log('error', `could not park transaction ${tx.id}: ${(err as Error).message}`));
        continue;
      }
      this.service.recordCheck(tx, now);
      const producer = this.pickProducer(tx.group);
      if (!producer) continue; // counted as unanswered; the next one is scheduled
      this.inFlight++;
      this.check(tx, producer, tx.checkTimes - 1).finally(() => this.inFlight--);
    }
    this.arm();
  }

  private pickProducer(group: string): Session | undefined {
    const live = this.producersOf(group);
    if (live.length === 0) return undefined;
    const n = this.roundRobin.get(group) ?? 0;
    this.roundRobin.set(group, n + 1);
    return live[n % live.length];
  }

  private async check(tx: Transaction, producer: Session, checkTimes: number): Promise<void> {
    try {
      const halves = tx.halves.slice(0, MAX_MESSAGES_PER_CHECK);
      const records = await Promise.all(halves.map((h) => this.store.readAt(h.physicalOffset)));
      // Halves are read by position: queueOffset -1, they have no place in a queue yet.
      const messages = records.map((r) => toWireDelivered(r, 0));
      const request: CheckTransactionRequest = { transactionId: tx.id, group: tx.group, checkTimes, messages };
      const timeoutMs = Math.max(100, Math.min(this.service.timings.checkIntervalMs, 10_000));
      const frame = await producer.peer.request(Command.CHECK_TRANSACTION_STATE, request, packBodies(records.map((r) => r.body)), { timeoutMs });
      const resolution = (frame.header.d as CheckTransactionResponse | undefined)?.resolution;
      if (resolution === 'COMMIT' || resolution === 'ROLLBACK') await this.service.end(tx.id, resolution, 'check');
    } catch (err) {
      // Unanswered (timeout, error, producer gone): the next check is already scheduled.
      this.log('warn', `check of transaction ${tx.id} with ${producer.clientId ?? producer.address} failed: ${(err as Error).message}`);
    }
  }
}
