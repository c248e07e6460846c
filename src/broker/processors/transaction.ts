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
import type { BrokerContext, Processor } from '../context.js';
import { asObject, optInt, optString, reqString } from '../validate.js';
import { recordsFromWire } from './send.js';

const TX_ID = /^[\x21-\x7e]{1,64}$/;
const MAX_IMMUNITY_MS = 7 * 24 * 3600_000;
const MAX_BATCH = 10_000;

function transactionId(d: Record<string, unknown>): string {
  const id = reqString(d, 'transactionId');
  if (!TX_ID.test(id)) throw new InvalidArgumentError('transactionId must be 1-64 printable ASCII characters');
  return id;
}

/** Stores one transaction's halves: `d` is a SEND_HALF payload (or one entry of a batch). */
async function prepareOne(ctx: BrokerContext, group: string, d: Record<string, unknown>, body: Buffer, compact: boolean): Promise<SendHalfResponse> {
  const id = transactionId(d);
  const immunity = optInt(d, 'checkImmunityMs', 0, MAX_IMMUNITY_MS, 0);
  const records = await recordsFromWire(ctx, d.messages, body, RecordType.PREPARED);
  await ctx.transactions.prepare(id, group, records, immunity);
  ctx.checker.poke();
  if (compact) return {};
  // queueOffset -1: a half has no place in its queue until the commit gives it one.
  return { results: records.map((r) => ({ msgId: r.msgId, topic: r.topic, queueId: r.queueId, queueOffset: -1 })) };
}

/** Commits or rolls back one transaction: `d` is an END_TRANSACTION payload (or a batch entry). */
async function endOne(ctx: BrokerContext, d: Record<string, unknown>): Promise<EndTransactionResponse> {
  const id = transactionId(d);
  const resolution = d.resolution;
  if (resolution !== 'COMMIT' && resolution !== 'ROLLBACK') throw new InvalidArgumentError(`resolution must be COMMIT or ROLLBACK, got ${JSON.stringify(resolution)}`);
  const source = (optString(d, 'source') ?? 'producer') as ResolutionSource;
  if (!['producer', 'check', 'operator'].includes(source)) throw new InvalidArgumentError(`source must be producer, check or operator`);
  return ctx.transactions.end(id, resolution, source);
}

/** Body bytes a list of wire messages claims (their `n`); malformed entries claim none. */
function claimedBytes(messages: unknown): number {
  let bytes = 0;
  if (Array.isArray(messages)) for (const m of messages as { n?: unknown }[]) if (typeof m?.n === 'number') bytes += m.n;
  return bytes;
}

/** Runs every entry at once (their appends share a group-commit round); each fails on its own. */
function settleEach<T>(entries: unknown[], label: string, run: (d: Record<string, unknown>, i: number) => Promise<T>): Promise<BatchOutcome<T>[]> {
  if (!Array.isArray(entries) || entries.length === 0 || entries.length > MAX_BATCH) {
    throw new InvalidArgumentError(`${label} must be an array of 1 to ${MAX_BATCH} entries`);
  }
  return Promise.all(
    entries.map(async (entry, i) => {
      try {
        return await run(asObject(entry, `${label}[${i}]`), i);
      } catch (err) {
        return { e: toWireError(err) };
      }
    }),
  );
}

/** SEND_HALF: half messages, stored durably and invisible until the transaction commits. */
export const sendHalf: Processor = async (ctx, _session, { payload, body }) => {
  const d = asObject(payload, 'SEND_HALF payload');
  const reply: SendHalfResponse = await prepareOne(ctx, validateName('group', d.group), d, body, d.cr === true);
  return { payload: reply };
};

/** SEND_HALF_BATCH: SEND_HALF for several transactions of one producer group, in one frame. */
export const sendHalfBatch: Processor = async (ctx, _session, { payload, body }) => {
  const d = asObject(payload, 'SEND_HALF_BATCH payload');
  const group = validateName('group', d.group);
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
  const compact = d.cr === true;
  const reply: SendHalfBatchResponse = { results: await settleEach(txs, 'txs', (tx, i) => prepareOne(ctx, group, tx, slices[i]!, compact)) };
  return { payload: reply };
};

/** END_TRANSACTION: acknowledged (RocketMQ's is oneway and may vanish), so producers can retry it. */
export const endTransaction: Processor = async (ctx, _session, { payload }) => {
  const reply: EndTransactionResponse = await endOne(ctx, asObject(payload, 'END_TRANSACTION payload'));
  return { payload: reply };
};

/** END_TRANSACTION_BATCH: END_TRANSACTION for several transactions, in one frame. */
export const endTransactionBatch: Processor = async (ctx, _session, { payload }) => {
  const d = asObject(payload, 'END_TRANSACTION_BATCH payload');
  const reply: EndTransactionBatchResponse = { results: await settleEach(d.ends as unknown[], 'ends', (end) => endOne(ctx, end)) };
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
