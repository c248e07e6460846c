import { Backoff } from '../common/backoff.js';
import { HalfmqError, IllegalStateError, InternalError, InvalidArgumentError, UnknownCommandError, errorFromWire, isRetriable, toWireError } from '../common/errors.js';
import type { Message, ReceivedMessage } from '../common/message.js';
import { validateName } from '../common/names.js';
import { BrokerFeature, Command } from '../protocol/commands.js';
import type { FrameHeader, Frame } from '../protocol/frame.js';
import { packBodies, splitBodies } from '../protocol/message-codec.js';
import type { Peer } from '../protocol/peer.js';
import type {
  BatchOutcome,
  CheckTransactionRequest,
  EndTransactionBatchRequest,
  EndTransactionBatchResponse,
  EndTransactionRequest,
  EndTransactionResponse,
  LocalTransactionState,
  SendHalfBatchRequest,
  SendHalfBatchResponse,
  SendHalfRequest,
  SendHalfResponse,
  TransactionResolution,
} from '../protocol/transaction-commands.js';
import { RESOLVED_STATE } from '../protocol/transaction-commands.js';
import { Connection } from './connection.js';
import type { ClientOptions } from './connection.js';
import { createMessageId } from './message-id.js';
import { encodeMessage, halfRecordInputOf, isPlainMessage, toReceivedMessage, validateMessage } from './message-convert.js';
import { encodeUnstampedRecords } from '../common/record-codec.js';
import type { RecordInput } from '../common/record.js';
import { RequestCoalescer, type Settled } from '../common/request-coalescer.js';

/** One transaction's halves, waiting to share a request with other transactions' halves. */
interface HalfEntry {
  request: Omit<SendHalfRequest, 'group'>;
  /** `messages` form: their bodies */
  bodies: Buffer[];
  /** `records` form (RECORD_HALF): the records, encoded with the rest of the request's */
  records?: RecordInput[];
}

// Concurrent transactions' halves (and their ends) share requests: with many transactions in
// flight, four frames per transaction were the largest cost left on both sides.
const MERGE_LIMITS = { maxItems: 1024, maxBytes: 128 * 1024 };
const END_ENTRY_BYTES = 96;
/** What a half as a record adds to its body: header, topic, id, and the transaction's properties. */
const RECORD_OVERHEAD_BYTES = 192;

/** A message as the local transaction sees it: what was sent, plus its ids. */
export type TransactionMessage = Message & { msgId: string; transactionId: string };

/** What the broker hands the checker: the transaction's (first) half message and its id. */
export type CheckMessage = ReceivedMessage & {
  transactionId: string;
  /** every half message of the transaction (up to 16) */
  messages: ReceivedMessage[];
  /** checks sent before this one */
  checkTimes: number;
};

// Both are typed as async: with a `T | Promise<T>` return type TypeScript widens the literal an
// async arrow returns ('COMMIT' becomes string) and rejects it. A plain value works at run time too.

/** Answers "what became of this transaction?" from durable local state (e.g. a transaction-log row). */
export type TransactionChecker = (message: CheckMessage) => Promise<LocalTransactionState>;

/** The local transaction: runs after the half messages are stored, decides their fate. */
export type LocalTransactionExecutor = (messages: TransactionMessage[]) => Promise<LocalTransactionState>;

export interface TransactionProducerOptions extends ClientOptions {
  /** Producer group: the broker asks any live producer of it about this group's transactions. */
  group: string;
  checker: TransactionChecker;
  /** Attempts at END_TRANSACTION on retriable failures before leaving it to the check. Default 4. */
  endAttempts?: number;
}

export interface TransactionOptions {
  /** no check-back earlier than this after the first half (on top of the broker's timeout) */
  checkImmunityMs?: number;
}

export interface TransactionResult {
  transactionId: string;
  msgIds: string[];
  /**
   * What the broker was told: COMMIT or ROLLBACK once it acknowledged it; UNKNOWN when the local
   * transaction said so (or threw), or when ending it failed after retries. An UNKNOWN one is
   * resolved by the broker's check-back through `checker`.
   */
  state: LocalTransactionState;
}

export type TransactionProducerState = 'idle' | 'running' | 'closed';

const LOCAL_STATES: ReadonlySet<string> = new Set(['COMMIT', 'ROLLBACK', 'UNKNOWN']);

/**
 * Sends transactional (half) messages: stored by the broker durably but invisible to consumers
 * until the local transaction commits. If the end of a transaction is lost (crash, timeout), the
 * broker asks a live producer of the same group through `checker`, so the checker must answer from
 * durable state shared by the group, never from this process's memory.
 *
 * @example
 * const producer = new TransactionProducer({ endpoints, group: 'orders', checker: async (msg) => lookUp(msg.transactionId) });
 * await producer.start();
 * const { state } = await producer.sendInTransaction({ topic: 'order-events', body }, async ([msg]) => {
 *   await db.transaction(async (t) => { await t.insertOrder(order); await t.insertTxLog(msg.transactionId); });
 *   return 'COMMIT';
 * });
 */
export class TransactionProducer {
  readonly group: string;
  private readonly connection: Connection;
  private readonly checker: TransactionChecker;
  private readonly endAttempts: number;
  private currentState: TransactionProducerState = 'idle';
  private readonly halves = new RequestCoalescer<HalfEntry, SendHalfResponse>((entries) => this.sendHalfRequest(entries), MERGE_LIMITS);
  private readonly ends = new RequestCoalescer<EndTransactionRequest, EndTransactionResponse>((ends) => this.sendEndRequest(ends), MERGE_LIMITS);

  constructor(options: TransactionProducerOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('transaction producer options are required');
    this.group = validateName('group', options.group);
    if (typeof options.checker !== 'function') throw new InvalidArgumentError('checker must be a function (message) => COMMIT | ROLLBACK | UNKNOWN');
    this.checker = options.checker;
    this.endAttempts = options.endAttempts ?? 4;
    if (!Number.isInteger(this.endAttempts) || this.endAttempts < 1) throw new InvalidArgumentError('endAttempts must be a positive integer');
    this.connection = new Connection({ ...options, producerGroup: this.group });
    this.connection.on('request', (frame, peer) => this.onBrokerRequest(frame, peer));
  }

  get state(): TransactionProducerState {
    return this.currentState;
  }

  /** Connects (HELLO with the producer group), from then on answering checks. */
  async start(): Promise<void> {
    this.assertOpen();
    await this.connection.connect();
    if (this.currentState === 'idle') this.currentState = 'running';
  }

  /**
   * Sends the half message(s), runs `executor` (the local transaction), then commits or rolls back
   * as it answers. A throw counts as UNKNOWN (the local transaction may have committed before it
   * threw; the check-back finds out) and is rethrown after the halves are safely stored.
   */
  async sendInTransaction(messages: Message | Message[], executor: LocalTransactionExecutor, options: TransactionOptions = {}): Promise<TransactionResult> {
    if (typeof executor !== 'function') throw new InvalidArgumentError('executor must be a function (messages) => COMMIT | ROLLBACK | UNKNOWN');
    const tx = this.beginTransaction(options);
    const sent = await tx.sendAll(Array.isArray(messages) ? messages : [messages]);
    // A throw leaves the transaction PREPARED on purpose: the broker will ask the checker.
    const state = await executor(sent);
    if (!LOCAL_STATES.has(state)) throw new InvalidArgumentError(`the local transaction returned ${JSON.stringify(state)}; expected COMMIT, ROLLBACK or UNKNOWN`);
    const ended = state === 'UNKNOWN' ? 'UNKNOWN' : await tx.end(state).then(
      () => state,
      () => 'UNKNOWN' as const,
    );
    return { transactionId: tx.id, msgIds: sent.map((m) => m.msgId), state: ended };
  }

  /** The two-step style: `const tx = producer.beginTransaction(); await tx.send(m); await tx.commit()`. */
  beginTransaction(options: TransactionOptions = {}): Transaction {
    this.assertOpen();
    const immunity = options.checkImmunityMs ?? 0;
    if (!Number.isInteger(immunity) || immunity < 0) throw new InvalidArgumentError('checkImmunityMs must be a non-negative integer');
    return new Transaction(this, createMessageId(), immunity);
  }

  /** Stops answering checks and closes the connection. Idempotent. */
  async shutdown(): Promise<void> {
    if (this.currentState === 'closed') return;
    this.currentState = 'closed';
    await this.connection.close();
  }

  /** @internal */
  async sendHalves(transactionId: string, messages: Message[], checkImmunityMs: number): Promise<TransactionMessage[]> {
    this.assertOpen();
    if (messages.length === 0) throw new InvalidArgumentError('a transaction needs at least one message');
    messages.forEach((m, i) => validateMessage(m, `messages[${i}]`));
    const hello = this.connection.state === 'ready' ? this.connection.brokerInfo! : await this.connection.connect();
    if (this.currentState === 'idle') this.currentState = 'running';
    const now = Date.now();
    const encoded = messages.map((m) => encodeMessage(m, createMessageId(now), hello.maxMessageSize, now));
    // As records the broker stores what it gets once stamped: no entry per message to decode, no
    // record to build and copy (as a plain Producer's SEND `records`).
    // (The batch form of records has no check immunity: a transaction that asks for one goes as entries.)
    const asRecords = checkImmunityMs === 0 && hello.features?.includes(BrokerFeature.RECORD_HALF) === true && encoded.every(isPlainMessage);
    const request: HalfEntry['request'] = asRecords ? { transactionId, records: encoded.length } : { transactionId, messages: encoded.map((e) => e.wire) };
    // Only when set: the broker's default is 0, and the key cost the broker 0.5 us a transaction to read.
    if (checkImmunityMs > 0) request.checkImmunityMs = checkImmunityMs;
    const entry: HalfEntry = asRecords
      ? { request, bodies: [], records: encoded.map((e) => halfRecordInputOf(e, transactionId, this.group)) }
      : { request, bodies: encoded.map((e) => e.body) };
    let bytes = 0;
    for (const e of encoded) bytes += e.body.length + (asRecords ? RECORD_OVERHEAD_BYTES : 64);
    await this.halves.add(entry, bytes);
    // Object.assign, not a spread: `{ ...m, more }` takes V8's slow path (1.5 µs against 0.1 µs).
    return messages.map((m, i) => Object.assign({}, m, { msgId: encoded[i]!.wire.id, transactionId }));
  }

  /** One SEND_HALF, or SEND_HALF_BATCH for the halves of several transactions. */
  private async sendHalfRequest(entries: HalfEntry[]): Promise<Settled<SendHalfResponse>[]> {
    // Safe to resend: a half joins its transaction by id, and the same ids are sent again.
    if (entries.length === 1) {
      const entry = entries[0]!;
      const request: SendHalfRequest = Object.assign({}, entry.request, { group: this.group, cr: true });
      const body = entry.records !== undefined ? encodeUnstampedRecords(entry.records) : packBodies(entry.bodies);
      const reply = await this.connection.request<SendHalfResponse>(Command.SEND_HALF, request, body, { retries: 2 });
      return [{ ok: true, value: reply.payload }];
    }
    const records = entries.filter((e) => e.records !== undefined);
    if (records.length === entries.length) return this.sendHalfRecords(entries);
    if (records.length === 0) return this.sendHalfEntries(entries);
    // Both forms in one tick (rare: a check immunity, a sharding key): a request each, answers in entry order.
    const others = entries.filter((e) => e.records === undefined);
    const [fromRecords, fromEntries] = await Promise.all([this.sendHalfRecords(records), this.sendHalfEntries(others)]);
    let r = 0;
    let o = 0;
    return entries.map((e) => (e.records !== undefined ? fromRecords[r++]! : fromEntries[o++]!));
  }

  /** SEND_HALF_BATCH `records` (RECORD_HALF): every half as a record; the broker answers each run of one transaction's. */
  private async sendHalfRecords(entries: HalfEntry[]): Promise<Settled<SendHalfResponse>[]> {
    const all = entries.flatMap((e) => e.records!);
    const request: SendHalfBatchRequest = { group: this.group, records: all.length, cr: true };
    const reply = await this.connection.request<SendHalfBatchResponse>(Command.SEND_HALF_BATCH, request, encodeUnstampedRecords(all), { retries: 2 });
    // Entries of the same transaction next to each other (two sends of one transaction in a tick)
    // are one run to the broker, so they share its answer.
    const run: number[] = new Array(entries.length);
    let runs = 0;
    entries.forEach((e, i) => (run[i] = i > 0 && e.request.transactionId === entries[i - 1]!.request.transactionId ? runs - 1 : runs++));
    const outcomes = settledFromBatch(reply.payload.results, runs);
    return run.map((k) => outcomes[k]!);
  }

  private async sendHalfEntries(entries: HalfEntry[]): Promise<Settled<SendHalfResponse>[]> {
    const request: SendHalfBatchRequest = { group: this.group, txs: entries.map((e) => e.request), cr: true };
    const reply = await this.connection.request<SendHalfBatchResponse>(Command.SEND_HALF_BATCH, request, packBodies(entries.flatMap((e) => e.bodies)), { retries: 2 });
    return settledFromBatch(reply.payload.results, entries.length);
  }

  /** One END_TRANSACTION, or an END_TRANSACTION_BATCH for several transactions. */
  private async sendEndRequest(ends: EndTransactionRequest[]): Promise<Settled<EndTransactionResponse>[]> {
    if (ends.length === 1) {
      return [{ ok: true, value: (await this.connection.request<EndTransactionResponse>(Command.END_TRANSACTION, ends[0])).payload }];
    }
    const all = ends.map((_, i) => i);
    let order = all;
    let request: EndTransactionBatchRequest = { ends, cr: true };
    if (this.connection.brokerInfo?.features?.includes(BrokerFeature.END_LISTS) === true) {
      // As two lists of ids (a map per end was most of the request's encoding), answered commits first.
      const commits = all.filter((i) => ends[i]!.resolution === 'COMMIT');
      const rollbacks = all.filter((i) => ends[i]!.resolution !== 'COMMIT');
      order = commits.concat(rollbacks);
      const ids = (at: number[]): string[] => at.map((i) => ends[i]!.transactionId);
      request = { commit: ids(commits), rollback: ids(rollbacks), cr: true };
    }
    const reply = await this.connection.request<EndTransactionBatchResponse>(Command.END_TRANSACTION_BATCH, request);
    const out: Settled<EndTransactionResponse>[] = new Array(ends.length);
    settledFromBatch(reply.payload.results, ends.length).forEach((s, k) => (out[order[k]!] = endSettled(s, ends[order[k]!]!)));
    return out;
  }

  /** @internal Acknowledged by the broker; retried on retriable failures (a repeat is a no-op). */
  async endTransaction(transactionId: string, resolution: TransactionResolution): Promise<EndTransactionResponse> {
    this.assertOpen();
    // No `source`: the broker takes an end without one as the producer's.
    const request: EndTransactionRequest = { transactionId, resolution };
    let backoff: Backoff | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.ends.add(request, END_ENTRY_BYTES);
      } catch (err) {
        if (!isRetriable(err) || attempt >= this.endAttempts || this.currentState === 'closed') throw err;
        backoff ??= new Backoff({ initialMs: 50, maxMs: 1_000 });
        await new Promise((resolve) => setTimeout(resolve, backoff!.next()));
      }
    }
  }

  private onBrokerRequest(frame: Frame, peer: Peer): void {
    const { header } = frame;
    if (header.c !== Command.CHECK_TRANSACTION_STATE) {
      peer.replyError(header, new UnknownCommandError(`client does not serve command ${header.c}`));
      return;
    }
    void this.answerCheck(header, frame.body, peer);
  }

  private async answerCheck(header: FrameHeader, body: Buffer, peer: Peer): Promise<void> {
    try {
      const d = header.d as CheckTransactionRequest;
      const wire = Array.isArray(d?.messages) ? d.messages : [];
      const bodies = splitBodies(body, wire);
      const messages = wire.map((w, i) => toReceivedMessage(w, bodies[i]!));
      const first = messages[0];
      if (!first) throw new InvalidArgumentError('check without messages');
      const resolution = await this.checker({ ...first, transactionId: d.transactionId, messages, checkTimes: d.checkTimes });
      if (!LOCAL_STATES.has(resolution)) throw new InvalidArgumentError(`checker returned ${JSON.stringify(resolution)}; expected COMMIT, ROLLBACK or UNKNOWN`);
      peer.reply(header, { resolution });
    } catch (err) {
      // The broker treats an error like UNKNOWN and checks again later.
      peer.replyError(header, err instanceof HalfmqError ? err : toWireError(err));
    }
  }

  private assertOpen(): void {
    if (this.currentState === 'closed') throw new IllegalStateError('transaction producer was shut down');
  }
}

export type TransactionHandleState = 'open' | 'committed' | 'rolled-back';

/**
 * One transaction in the two-step style. Messages sent through it are stored as halves at once;
 * `commit()` makes all of them visible together, `rollback()` none of them.
 */
export class Transaction {
  readonly id: string;
  private readonly producer: TransactionProducer;
  private readonly checkImmunityMs: number;
  private readonly msgIds: string[] = [];
  private currentState: TransactionHandleState = 'open';

  /** @internal use TransactionProducer.beginTransaction() */
  constructor(producer: TransactionProducer, id: string, checkImmunityMs: number) {
    this.producer = producer;
    this.id = id;
    this.checkImmunityMs = checkImmunityMs;
  }

  get state(): TransactionHandleState {
    return this.currentState;
  }

  get messageIds(): readonly string[] {
    return this.msgIds;
  }

  async send(message: Message): Promise<TransactionMessage> {
    const [sent] = await this.sendAll([message]);
    return sent!;
  }

  /** @internal */
  async sendAll(messages: Message[]): Promise<TransactionMessage[]> {
    this.assertOpen();
    const sent = await this.producer.sendHalves(this.id, messages, this.checkImmunityMs);
    this.msgIds.push(...sent.map((m) => m.msgId));
    return sent;
  }

  async commit(): Promise<void> {
    await this.end('COMMIT');
  }

  async rollback(): Promise<void> {
    await this.end('ROLLBACK');
  }

  /** @internal */
  async end(resolution: TransactionResolution): Promise<void> {
    this.assertOpen();
    if (this.msgIds.length === 0) throw new IllegalStateError(`transaction ${this.id} has no messages to ${resolution.toLowerCase()}`);
    await this.producer.endTransaction(this.id, resolution);
    this.currentState = resolution === 'COMMIT' ? 'committed' : 'rolled-back';
  }

  private assertOpen(): void {
    if (this.currentState !== 'open') throw new IllegalStateError(`transaction ${this.id} is already ${this.currentState}`);
  }
}

/** One end's outcome; a compact answer (`changed` alone) gets the state its resolution leads to. */
function endSettled(s: Settled<EndTransactionResponse | boolean>, end: EndTransactionRequest): Settled<EndTransactionResponse> {
  if (s.ok && typeof s.value === 'boolean') return { ok: true, value: { state: RESOLVED_STATE[end.resolution], changed: s.value } };
  // A broker without the compact form ignores `cr` and answers maps.
  return s as Settled<EndTransactionResponse>;
}

/** A batch reply as one outcome per item, checked against the number of items sent. */
function settledFromBatch<T>(results: BatchOutcome<T>[] | undefined, expected: number): Settled<T>[] {
  if (!Array.isArray(results) || results.length !== expected) {
    throw new InternalError(`broker answered a batch of ${expected} transactions with ${Array.isArray(results) ? results.length : 'no'} results`);
  }
  return results.map((r) =>
    typeof r === 'object' && r !== null && 'e' in r ? { ok: false as const, error: errorFromWire(r.e) } : { ok: true as const, value: r as T },
  );
}
