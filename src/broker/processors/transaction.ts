import { InvalidArgumentError, TransactionNotFoundError } from '../../common/errors.js';
import { validateName } from '../../common/names.js';
import type {
  EndTransactionResponse,
  ListTransactionsResponse,
  ResolutionSource,
  SendHalfResponse,
  TransactionInfo,
} from '../../protocol/transaction-commands.js';
import { RecordType } from '../../storage/index.js';
import type { Processor } from '../context.js';
import { asObject, optInt, optString, reqString } from '../validate.js';
import { recordsFromWire } from './send.js';

const TX_ID = /^[\x21-\x7e]{1,64}$/;
const MAX_IMMUNITY_MS = 7 * 24 * 3600_000;

function transactionId(d: Record<string, unknown>): string {
  const id = reqString(d, 'transactionId');
  if (!TX_ID.test(id)) throw new InvalidArgumentError('transactionId must be 1-64 printable ASCII characters');
  return id;
}

/** SEND_HALF: half messages, stored durably and invisible until the transaction commits. */
export const sendHalf: Processor = async (ctx, _session, { payload, body }) => {
  const d = asObject(payload, 'SEND_HALF payload');
  const id = transactionId(d);
  const group = validateName('group', d.group);
  const immunity = optInt(d, 'checkImmunityMs', 0, MAX_IMMUNITY_MS, 0);
  const records = await recordsFromWire(ctx, d.messages, body, RecordType.PREPARED);
  await ctx.transactions.prepare(id, group, records, immunity);
  ctx.checker.poke();
  // queueOffset -1: a half has no place in its queue until the commit gives it one.
  const reply: SendHalfResponse = { results: records.map((r) => ({ msgId: r.msgId, topic: r.topic, queueId: r.queueId, queueOffset: -1 })) };
  return { payload: reply };
};

/** END_TRANSACTION: acknowledged (RocketMQ's is oneway and may vanish), so producers can retry it. */
export const endTransaction: Processor = async (ctx, _session, { payload }) => {
  const d = asObject(payload, 'END_TRANSACTION payload');
  const id = transactionId(d);
  const resolution = d.resolution;
  if (resolution !== 'COMMIT' && resolution !== 'ROLLBACK') throw new InvalidArgumentError(`resolution must be COMMIT or ROLLBACK, got ${JSON.stringify(resolution)}`);
  const source = (optString(d, 'source') ?? 'producer') as ResolutionSource;
  if (!['producer', 'check', 'operator'].includes(source)) throw new InvalidArgumentError(`source must be producer, check or operator`);
  const reply: EndTransactionResponse = await ctx.transactions.end(id, resolution, source);
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
