import { InvalidArgumentError, MalformedFrameError, TransactionNotFoundError, toWireError } from '../../common/errors.js';
import { validateName } from '../../common/names.js';
import type {
  BatchOutcome,
  EndTransactionBatchResponse,
  EndTransactionResponse,
  ListTransactionsResponse,
  ResolutionSource,
  SendHalfBatchResponse,
  SendHalfResponse,
  TransactionInfo,
} from '../../protocol/transaction-commands.js';
import { RecordType } from '../../storage/index.js';
import type { RecordInput } from '../../storage/index.js';
import { TX_GROUP_PROPERTY, TX_ID_PROPERTY } from '../../common/system-properties.js';
import type { BrokerContext, Processor } from '../context.js';
import { asObject, optInt, optString, reqString } from '../validate.js';
import { abandon, checkRecordCount, checkRecordsEnd, readSentRecord, recordInputOfSent, recordsFromRecordBody, recordsFromWire } from './send.js';
import type { EndRequest, HalfSet } from '../transaction-service.js';
import type { Settled } from '../../common/request-coalescer.js';

const TX_ID = /^[\x21-\x7e]{1,64}$/;
const MAX_IMMUNITY_MS = 7 * 24 * 3600_000;
const MAX_BATCH = 10_000;

function transactionId(d: Record<string, unknown>): string {
  const id = reqString(d, 'transactionId');
  if (!TX_ID.test(id)) throw new InvalidArgumentError('transactionId must be 1-64 printable ASCII characters');
  return id;
}

/**
 * One transaction's halves from a SEND_HALF payload (or one entry of a batch), checked. A promise
 * only when a topic has to be created first.
 */
function halfSet(ctx: BrokerContext, group: string, d: Record<string, unknown>, body: Buffer): HalfSet | Promise<HalfSet> {
  const id = transactionId(d);
  const checkImmunityMs = optInt(d, 'checkImmunityMs', 0, MAX_IMMUNITY_MS, 0);
  if (d.records !== undefined) {
    const records = recordsFromRecordBody(ctx, d.records, body, RecordType.PREPARED);
    const checked = (placed: RecordInput[]): HalfSet => {
      placed.forEach((r, i) => checkHalfMark(r, i, id, group));
      return { id, group, records: placed, checkImmunityMs };
    };
    return Array.isArray(records) ? checked(records) : records.then(checked);
  }
  const records = recordsFromWire(ctx, d.messages, body, RecordType.PREPARED);
  return Array.isArray(records) ? { id, group, records, checkImmunityMs } : records.then((placed) => ({ id, group, records: placed, checkImmunityMs }));
}

/**
 * Half records (RECORD_HALF) are stored as sent, so they must already name their transaction and
 * group as the log replay reads them: the broker cannot add the properties to bytes it only stamps.
 */
function checkHalfMark(record: RecordInput, i: number, id: string, group: string): void {
  const p = record.properties;
  if (p[TX_ID_PROPERTY] !== id || p[TX_GROUP_PROPERTY] !== group) {
    throw new InvalidArgumentError(`half record ${i} of transaction ${id} must carry ${TX_ID_PROPERTY}=${id} and ${TX_GROUP_PROPERTY}=${group}`, {
      context: { transactionId: id, index: i },
    });
  }
}

function halfReply(set: HalfSet, compact: boolean): SendHalfResponse {
  if (compact) return {};
  // queueOffset -1: a half has no place in its queue until the commit gives it one.
  return { results: set.records.map((r) => ({ msgId: r.msgId, topic: r.topic, queueId: r.queueId, queueOffset: -1 })) };
}

/** The halves of one transaction in a SEND_HALF_BATCH `records` body, or why they are refused. */
interface HalfRun {
  /** the records' __TX_ID as read, which a run shares */
  key: unknown;
  id: string;
  group: string;
  records: RecordInput[];
  /** topics being created for them */
  placing: Promise<void>[];
  error?: unknown;
}

/**
 * SEND_HALF_BATCH `records` (RECORD_HALF): `count` half records back to back, each run of records
 * with the same __TX_ID one transaction (a producer sends a transaction's halves together). A
 * record whose framing is broken fails the frame (the rest cannot be read); any other fault fails
 * its transaction alone.
 */
function halfRuns(ctx: BrokerContext, group: string, count: unknown, body: Buffer): HalfRun[] {
  checkRecordCount(count);
  const runs: HalfRun[] = [];
  const now = Date.now();
  let run: HalfRun | undefined;
  let at = 0;
  try {
    for (let i = 0; i < count; i++) {
      const r = readSentRecord(body, at, i, count);
      const encoded = body.subarray(at, at + r.size);
      at += r.size;
      const id: unknown = r.properties[TX_ID_PROPERTY];
      if (run === undefined || id !== run.key) {
        run = { key: id, id: typeof id === 'string' ? id : '', group, records: [], placing: [] };
        runs.push(run);
        if (typeof id !== 'string' || !TX_ID.test(id)) run.error = new InvalidArgumentError(`half record ${i} carries no ${TX_ID_PROPERTY} of 1-64 printable ASCII characters`, { context: { index: i } });
      }
      if (run.error !== undefined) continue;
      try {
        const record = recordInputOfSent(ctx, r, encoded, RecordType.PREPARED, now, run.placing);
        checkHalfMark(record, i, run.id, group);
        run.records.push(record);
      } catch (err) {
        run.error = err;
        abandon(run.placing);
      }
    }
    checkRecordsEnd(body, at, count);
  } catch (err) {
    for (const r of runs) abandon(r.placing);
    throw err;
  }
  return runs;
}

function checkedRun(d: Record<string, unknown>): HalfSet | Promise<HalfSet> {
  const run = d as unknown as HalfRun;
  if (run.error !== undefined) throw run.error;
  const set: HalfSet = { id: run.id, group: run.group, records: run.records, checkImmunityMs: 0 };
  return run.placing.length === 0 ? set : Promise.all(run.placing).then(() => set);
}

/** One END_TRANSACTION payload (or a batch entry), checked. */
function endRequest(d: Record<string, unknown>): EndRequest {
  const id = transactionId(d);
  const resolution = d.resolution;
  if (resolution !== 'COMMIT' && resolution !== 'ROLLBACK') throw new InvalidArgumentError(`resolution must be COMMIT or ROLLBACK, got ${JSON.stringify(resolution)}`);
  const source = (optString(d, 'source') ?? 'producer') as ResolutionSource;
  if (!SOURCES.has(source)) throw new InvalidArgumentError(`source must be producer, check or operator`);
  return { id, resolution, source };
}

const SOURCES: ReadonlySet<string> = new Set(['producer', 'check', 'operator']);

/** END_LISTS: `commit` and `rollback` id lists as the entries of `ends` (the producer's, in that order). */
function endsFromLists(d: Record<string, unknown>): unknown[] {
  const { commit = [], rollback = [] } = d;
  if (!Array.isArray(commit) || !Array.isArray(rollback)) throw new InvalidArgumentError('commit and rollback must be arrays of transaction ids');
  const ends: unknown[] = new Array(commit.length + rollback.length);
  let i = 0;
  for (const transactionId of commit) ends[i++] = { transactionId, resolution: 'COMMIT' };
  for (const transactionId of rollback) ends[i++] = { transactionId, resolution: 'ROLLBACK' };
  return ends;
}

/** Body bytes a list of wire messages claims (their `n`); malformed entries claim none. */
function claimedBytes(messages: unknown): number {
  let bytes = 0;
  if (Array.isArray(messages)) for (const m of messages as { n?: unknown }[]) if (typeof m?.n === 'number') bytes += m.n;
  return bytes;
}

/**
 * Checks every entry of a batch frame (a bad one fails alone), hands the good ones to `run` at
 * once (their appends share a group-commit round), and answers each in frame order.
 */
async function settleEach<I, V, T>(
  entries: unknown,
  label: string,
  check: (d: Record<string, unknown>, i: number) => I | Promise<I>,
  run: (items: I[]) => Promise<Settled<V>[]>,
  answer: (item: I, value: V) => T,
): Promise<BatchOutcome<T>[]> {
  if (!Array.isArray(entries) || entries.length === 0 || entries.length > MAX_BATCH) {
    throw new InvalidArgumentError(`${label} must be an array of 1 to ${MAX_BATCH} entries`);
  }
  const outcomes: BatchOutcome<T>[] = new Array(entries.length);
  const items: I[] = [];
  const at: number[] = [];
  for (let i = 0; i < entries.length; i++) {
    try {
      const item = check(asObject(entries[i], label, i), i);
      items.push(item instanceof Promise ? await item : item);
      at.push(i);
    } catch (err) {
      outcomes[i] = { e: toWireError(err) };
    }
  }
  const settled = items.length > 0 ? await run(items) : [];
  settled.forEach((s, k) => (outcomes[at[k]!] = s.ok ? answer(items[k]!, s.value) : { e: toWireError(s.error) }));
  return outcomes;
}

/** SEND_HALF: half messages, stored durably and invisible until the transaction commits. */
export const sendHalf: Processor = async (ctx, _session, { payload, body }) => {
  const d = asObject(payload, 'SEND_HALF payload');
  const set = await halfSet(ctx, validateName('group', d.group), d, body);
  await ctx.transactions.prepare(set.id, set.group, set.records, set.checkImmunityMs);
  ctx.checker.poke();
  return { payload: halfReply(set, d.cr === true) };
};

/** SEND_HALF_BATCH: SEND_HALF for several transactions of one producer group, in one frame. */
export const sendHalfBatch: Processor = async (ctx, _session, { payload, body }) => {
  const d = asObject(payload, 'SEND_HALF_BATCH payload');
  const group = validateName('group', d.group);
  const compact = d.cr === true;
  if (d.records !== undefined) {
    const results = await settleEach(halfRuns(ctx, group, d.records, body), 'records', checkedRun, (sets) => ctx.transactions.prepareMany(sets), (set) => halfReply(set, compact));
    ctx.checker.poke();
    const reply: SendHalfBatchResponse = { results };
    return { payload: reply };
  }
  const txs = d.txs as unknown[];
  // Each transaction's bodies are the next run of the frame body (its messages' `n`, checked in
  // detail by recordsFromWire); a total that does not match fails the whole frame, as a SEND's
  // does (MALFORMED_FRAME, from splitBodies).
  const slices: Buffer[] = [];
  let at = 0;
  for (const tx of Array.isArray(txs) ? txs : []) {
    const bytes = claimedBytes((tx as { messages?: unknown } | null)?.messages);
    if (at + bytes > body.length) throw new MalformedFrameError(`SEND_HALF_BATCH: the messages claim more body bytes than the frame has (${body.length})`);
    slices.push(body.subarray(at, at + bytes));
    at += bytes;
  }
  if (at !== body.length) throw new MalformedFrameError(`SEND_HALF_BATCH: ${body.length - at} body bytes belong to no message`);
  const results = await settleEach(
    txs,
    'txs',
    (tx, i) => halfSet(ctx, group, tx, slices[i]!),
    (sets) => ctx.transactions.prepareMany(sets),
    (set) => halfReply(set, compact),
  );
  ctx.checker.poke();
  const reply: SendHalfBatchResponse = { results };
  return { payload: reply };
};

/** END_TRANSACTION: acknowledged (RocketMQ's is oneway and may vanish), so producers can retry it. */
export const endTransaction: Processor = async (ctx, _session, { payload }) => {
  const end = endRequest(asObject(payload, 'END_TRANSACTION payload'));
  const reply: EndTransactionResponse = await ctx.transactions.end(end.id, end.resolution, end.source);
  return { payload: reply };
};

/** END_TRANSACTION_BATCH: END_TRANSACTION for several transactions, in one frame. */
export const endTransactionBatch: Processor = async (ctx, _session, { payload }) => {
  const d = asObject(payload, 'END_TRANSACTION_BATCH payload');
  // Compact, as the SDK asks: a map per transaction was the largest part of encoding this reply.
  const compact = d.cr === true;
  const results = await settleEach(
    d.ends === undefined ? endsFromLists(d) : d.ends,
    'ends',
    endRequest,
    (ends) => ctx.transactions.endMany(ends),
    (_end, outcome): EndTransactionResponse | boolean => (compact ? outcome.changed : outcome),
  );
  const reply: EndTransactionBatchResponse = { results };
  return { payload: reply };
};

export const listTransactions: Processor = async (ctx, _session, { payload }) => {
  const d = asObject(payload ?? {}, 'LIST_TRANSACTIONS payload');
  const state = optString(d, 'state') ?? 'prepared';
  if (!['prepared', 'parked', 'all'].includes(state)) throw new InvalidArgumentError(`state must be prepared, parked or all`);
  const limit = optInt(d, 'limit', 1, 100_000, 1000);
  const txs = state === 'all' ? await ctx.transactionTable.listAll(limit) : ctx.transactionTable.listOpen(state as 'prepared' | 'parked').slice(0, limit);
  const reply: ListTransactionsResponse = { transactions: txs.map((tx) => ctx.transactionTable.toInfo(tx)).sort((a, b) => a.createdAt - b.createdAt) };
  return { payload: reply };
};

export const getTransaction: Processor = async (ctx, _session, { payload }) => {
  const id = transactionId(asObject(payload, 'GET_TRANSACTION payload'));
  const tx = await ctx.transactionTable.get(id);
  if (!tx) throw new TransactionNotFoundError(`transaction ${id} not found`, { context: { transactionId: id } });
  const reply: TransactionInfo = ctx.transactionTable.toInfo(tx);
  return { payload: reply };
};
