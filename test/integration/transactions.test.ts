import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Admin, SimpleConsumer, TransactionConflictError, TransactionProducer } from '../../src/index.js';
import type { LocalTransactionState, ReceivedMessage } from '../../src/index.js';
import { Connection } from '../../src/client/connection.js';
import { BrokerFeature, Command } from '../../src/protocol/commands.js';
import { encodeUnstampedRecords } from '../../src/common/record-codec.js';
import { RecordType, type RecordInput } from '../../src/common/record.js';
import { TX_GROUP_PROPERTY, TX_ID_PROPERTY } from '../../src/common/system-properties.js';
import type { EndTransactionBatchResponse, SendHalfBatchResponse } from '../../src/protocol/transaction-commands.js';
import { ROOT, removeDir, runCli, startBrokerProcess, tempDir, uniqueName, waitFor } from '../helpers/broker-process.js';
import type { BrokerProcess } from '../helpers/broker-process.js';

// Fast checks so the tests take seconds: first check after 400 ms, every 300 ms, park after 3.
const TX_FLAGS = ['--tx-timeout-ms', '400', '--tx-check-interval-ms', '300', '--tx-check-max', '3'];

let broker: BrokerProcess;
let admin: Admin;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  broker = await startBrokerProcess({ args: TX_FLAGS });
  admin = new Admin({ endpoints: broker.endpoints });
});
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});
afterAll(async () => {
  await admin?.shutdown();
  await broker?.stop();
  if (broker) await removeDir(broker.dataDir);
});

function producer(endpoints: string, group: string, checker: (txId: string) => LocalTransactionState = () => 'UNKNOWN'): TransactionProducer {
  const p = new TransactionProducer({ endpoints, group, checker: async (m) => checker(m.transactionId) });
  cleanup.push(() => p.shutdown());
  return p;
}

/** Everything a fresh group can consume from `topics` until nothing comes for `idleMs`. */
async function consumeAll(endpoints: string, topics: string[], idleMs = 800): Promise<ReceivedMessage[]> {
  const c = new SimpleConsumer({ endpoints, group: uniqueName('g'), subscriptions: Object.fromEntries(topics.map((t) => [t, '*'])) });
  await c.start();
  const got: ReceivedMessage[] = [];
  try {
    for (;;) {
      const batch = await c.receive(256, idleMs);
      if (batch.length === 0) return got;
      got.push(...batch);
      await c.ack(batch);
    }
  } finally {
    await c.shutdown();
  }
}

const bodies = (msgs: ReceivedMessage[]): string[] => msgs.map((m) => m.body.toString()).sort();

describe('transactional messages', () => {
  it('commit delivers exactly once; rollback never; half messages stay invisible until the end', async () => {
    const topic = uniqueName('tx');
    const p = producer(broker.endpoints, uniqueName('pg'));
    await p.start();
    const committed = await p.sendInTransaction({ topic, body: 'committed' }, async () => 'COMMIT');
    expect(committed.state).toBe('COMMIT');
    expect(committed.msgIds).toHaveLength(1);
    const rolledBack = await p.sendInTransaction({ topic, body: 'rolled-back' }, async () => 'ROLLBACK');
    expect(rolledBack.state).toBe('ROLLBACK');

    const open = p.beginTransaction();
    await open.send({ topic, body: 'still-open' });
    const seen = await consumeAll(broker.endpoints, [topic]);
    expect(bodies(seen)).toEqual(['committed']);
    expect(seen[0]!.msgId).toBe(committed.msgIds[0]);
    expect(seen[0]!.properties.__TX_ID).toBe(committed.transactionId);

    await open.commit();
    const after = await consumeAll(broker.endpoints, [topic]);
    expect(bodies(after)).toEqual(['committed', 'still-open']);
    expect((await admin.getTransaction(rolledBack.transactionId)).state).toBe('ROLLED_BACK');
  });

  it('a multi-message transaction over two topics becomes visible all at once, or not at all', async () => {
    const [a, b] = [uniqueName('txa'), uniqueName('txb')];
    const p = producer(broker.endpoints, uniqueName('pg'));
    const msgs = [
      { topic: a, body: 'a1', keys: ['order-1'] },
      { topic: a, body: 'a2', tag: 'paid' },
      { topic: b, body: 'b1' },
    ];
    const tx = p.beginTransaction();
    for (const m of msgs) await tx.send(m);
    expect(await consumeAll(broker.endpoints, [a, b], 400)).toEqual([]);
    expect((await admin.getTransaction(tx.id)).messages).toHaveLength(3);
    await tx.commit();
    expect(bodies(await consumeAll(broker.endpoints, [a, b]))).toEqual(['a1', 'a2', 'b1']);

    const rolled = await p.sendInTransaction(msgs.map((m) => ({ ...m, body: `r-${m.body}` })), async () => 'ROLLBACK');
    expect(rolled.msgIds).toHaveLength(3);
    // a fresh group starts from the earliest message: the committed three, none of the rolled back
    expect(bodies(await consumeAll(broker.endpoints, [a, b], 400))).toEqual(['a1', 'a2', 'b1']);
  });

  it('UNKNOWN is resolved by the check-back, either way; a throw counts as UNKNOWN and reaches the caller', async () => {
    const topic = uniqueName('txu');
    const group = uniqueName('pg');
    const localLog = new Map<string, LocalTransactionState>();
    const p = producer(broker.endpoints, group, (id) => localLog.get(id) ?? 'UNKNOWN');
    await p.start();
    const c = await p.sendInTransaction({ topic, body: 'check-commits' }, async ([m]) => {
      localLog.set(m!.transactionId, 'COMMIT');
      return 'UNKNOWN';
    });
    expect(c.state).toBe('UNKNOWN');
    const r = await p.sendInTransaction({ topic, body: 'check-rolls-back' }, async ([m]) => {
      localLog.set(m!.transactionId, 'ROLLBACK');
      return 'UNKNOWN';
    });
    let thrownTx = '';
    await expect(
      p.sendInTransaction({ topic, body: 'threw-after-commit' }, async ([m]) => {
        thrownTx = m!.transactionId;
        localLog.set(m!.transactionId, 'COMMIT');
        throw new Error('connection to the database dropped after COMMIT');
      }),
    ).rejects.toThrow('connection to the database dropped');

    await waitFor(async () => {
      const states = await Promise.all([c, r].map((x) => admin.getTransaction(x.transactionId)).concat(admin.getTransaction(thrownTx)));
      return states.every((s) => s.state !== 'PREPARED');
    }, 'the checker to resolve all three');
    const t = await admin.getTransaction(c.transactionId);
    expect(t).toMatchObject({ state: 'COMMITTED', resolvedBy: 'check' });
    expect(t.checkTimes).toBeGreaterThanOrEqual(1);
    expect((await admin.getTransaction(r.transactionId)).state).toBe('ROLLED_BACK');
    expect(bodies(await consumeAll(broker.endpoints, [topic]))).toEqual(['check-commits', 'threw-after-commit']);
  });

  it('a producer killed after its local commit, before end-transaction: another producer of the group answers the check', async () => {
    const topic = uniqueName('txk');
    const group = uniqueName('pg');
    const ledgerDir = await tempDir();
    cleanup.push(() => removeDir(ledgerDir));
    const ledger = path.join(ledgerDir, 'committed-transactions.log');
    writeFileSync(ledger, '');
    const child = spawn(process.execPath, [path.join(ROOT, 'test/fixtures/tx-crash-producer.mjs'), broker.endpoints, group, topic, ledger, 'order-42'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    cleanup.push(async () => {
      child.kill('SIGKILL');
      await exited;
    });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor(() => out.includes('LOCAL_COMMITTED'), 'the doomed producer to commit locally');
    const txId = /LOCAL_COMMITTED (\S+)/.exec(out)![1]!;
    child.kill('SIGKILL');
    await exited;

    // The survivor knows nothing in memory: it answers from the shared durable ledger.
    const survivor = producer(broker.endpoints, group, (id) => (readFileSync(ledger, 'utf8').split('\n').includes(id) ? 'COMMIT' : 'ROLLBACK'));
    await survivor.start();
    await waitFor(async () => (await admin.getTransaction(txId)).state === 'COMMITTED', 'the check to commit it');
    const seen = await consumeAll(broker.endpoints, [topic]);
    expect(bodies(seen)).toEqual(['order-42']);
  });

  it('parks a transaction nobody answers after the max checks; an operator then commits or rolls back (tx CLI)', async () => {
    const topic = uniqueName('txp');
    const p = producer(broker.endpoints, uniqueName('pg'), () => 'UNKNOWN');
    const toCommit = p.beginTransaction();
    await toCommit.send({ topic, body: 'operator-commits' });
    const toRollback = p.beginTransaction();
    await toRollback.send({ topic, body: 'operator-rolls-back' });
    const server = ['--server', broker.endpoints];
    await waitFor(async () => {
      const r = await runCli(['tx', 'list', '--state', 'parked', '--json', ...server]);
      const ids = (JSON.parse(r.stdout) as { transactionId: string }[]).map((t) => t.transactionId);
      return ids.includes(toCommit.id) && ids.includes(toRollback.id);
    }, 'both transactions to be parked');
    expect((await admin.getTransaction(toCommit.id)).checkTimes).toBe(3);

    const shown = await runCli(['tx', 'show', toCommit.id, ...server]);
    expect(shown.stdout).toContain('PARKED');
    expect(shown.stdout).toContain(topic);
    const commit = await runCli(['tx', 'resolve', toCommit.id, '--commit', ...server]);
    expect(commit.code, commit.stderr).toBe(0);
    expect(commit.stdout).toContain('COMMITTED');
    const rollback = await runCli(['tx', 'resolve', toRollback.id, '--rollback', ...server]);
    expect(rollback.code, rollback.stderr).toBe(0);
    const conflict = await runCli(['tx', 'resolve', toRollback.id, '--commit', ...server]);
    expect(conflict.code).not.toBe(0);
    expect(conflict.stderr).toMatch(/already ROLLED_BACK.*\(TX_CONFLICT\)/);
    const neither = await runCli(['tx', 'resolve', toRollback.id, ...server]);
    expect(neither.code).not.toBe(0);

    expect(bodies(await consumeAll(broker.endpoints, [topic]))).toEqual(['operator-commits']);
  });

  it('treats a repeated end as a no-op and refuses a conflicting one; first resolution wins', async () => {
    const topic = uniqueName('txd');
    const p = producer(broker.endpoints, uniqueName('pg'));
    const tx = p.beginTransaction();
    await tx.send({ topic, body: 'once' });
    await tx.commit();
    expect(await admin.resolveTransaction(tx.id, 'COMMIT')).toEqual({ state: 'COMMITTED', changed: false });
    const err = await admin.resolveTransaction(tx.id, 'ROLLBACK').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionConflictError);
    expect((err as TransactionConflictError).retriable).toBe(false);
    await expect(tx.commit()).rejects.toThrow(/already committed/);
    // a half cannot join a resolved transaction
    const late = await runCli(['tx', 'show', tx.id, '--json', '--server', broker.endpoints]);
    expect(JSON.parse(late.stdout)).toMatchObject({ state: 'COMMITTED', resolvedBy: 'producer' });
    expect(bodies(await consumeAll(broker.endpoints, [topic]))).toEqual(['once']);
    await expect(admin.getTransaction('no-such-transaction')).rejects.toMatchObject({ code: 'TX_NOT_FOUND' });
    // Check immunity reaches the broker (only sent when set): no check before it, timeout or not.
    const immune = p.beginTransaction({ checkImmunityMs: 600_000 });
    await immune.send({ topic, body: 'immune' });
    const info = await admin.getTransaction(immune.id);
    expect(info.nextCheckAt! - info.createdAt).toBe(600_000);
    await immune.rollback();
    // Ends of one tick share a request (as commit and rollback lists): each caller still hears its own answer.
    const [a, b] = [p.beginTransaction(), p.beginTransaction()];
    await Promise.all([a.send({ topic, body: 'a' }), b.send({ topic, body: 'b' })]);
    await admin.resolveTransaction(b.id, 'COMMIT');
    const [rolledBack, committed] = await Promise.allSettled([b.rollback(), a.commit()]);
    expect(rolledBack).toMatchObject({ status: 'rejected', reason: { code: 'TX_CONFLICT' } });
    expect(committed.status).toBe('fulfilled');
  });

  it('concurrent transactions share requests, yet each commits or rolls back on its own, delivered once', async () => {
    const topic = uniqueName('txc');
    const p = producer(broker.endpoints, uniqueName('pg'));
    await p.start();
    // Started in the same tick, so their halves and their ends travel as batch requests.
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => p.sendInTransaction({ topic, body: `m${i}` }, async () => (i % 2 === 0 ? 'COMMIT' : 'ROLLBACK'))),
    );
    expect(results.map((r) => r.state)).toEqual(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? 'COMMIT' : 'ROLLBACK')));
    expect(new Set(results.map((r) => r.transactionId)).size).toBe(60);
    const seen = await consumeAll(broker.endpoints, [topic]);
    expect(bodies(seen)).toEqual(Array.from({ length: 30 }, (_, i) => `m${i * 2}`).sort());
    expect(seen.map((m) => m.msgId).sort()).toEqual(results.filter((r) => r.state === 'COMMIT').flatMap((r) => r.msgIds).sort());
  });

  it('one tick of halves in both forms, with two sends of one transaction: each send answered, each committed message delivered once', async () => {
    const topic = uniqueName('txm');
    const p = producer(broker.endpoints, uniqueName('pg'));
    await p.start();
    const twice = p.beginTransaction();
    // A check immunity is not in the records form: that transaction's halves go as entries.
    const immune = p.beginTransaction({ checkImmunityMs: 60_000 });
    const other = p.beginTransaction();
    const sent = await Promise.all([twice.send({ topic, body: 'a' }), twice.send({ topic, body: 'b' }), immune.send({ topic, body: 'c' }), other.send({ topic, body: 'd' })]);
    expect(sent.map((m) => m.transactionId)).toEqual([twice.id, twice.id, immune.id, other.id]);
    await Promise.all([twice.commit(), immune.commit(), other.rollback()]);
    const seen = await consumeAll(broker.endpoints, [topic]);
    expect(bodies(seen).sort()).toEqual(['a', 'b', 'c']);
    expect(seen.map((m) => m.msgId).sort()).toEqual(sent.slice(0, 3).map((m) => m.msgId).sort());
  });

  it('a batch request answers each transaction on its own: a bad entry fails alone', async () => {
    const topic = uniqueName('txb');
    const group = uniqueName('pg');
    const conn = new Connection({ endpoints: broker.endpoints, producerGroup: group });
    cleanup.push(() => conn.close());
    await conn.connect();
    const wire = (id: string, body: string) => ({ t: topic, id, n: Buffer.byteLength(body) });
    const halves = await conn.request<SendHalfBatchResponse>(
      Command.SEND_HALF_BATCH,
      { group, txs: [{ transactionId: 'batch-ok', messages: [wire('MSG-OK-1', 'ok')] }, { transactionId: 'bad id with spaces', messages: [wire('MSG-BAD-1', 'bad')] }] },
      Buffer.from('okbad'),
    );
    expect(halves.payload.results[0]).toMatchObject({ results: [{ msgId: 'MSG-OK-1', topic }] });
    expect(halves.payload.results[1]).toMatchObject({ e: { code: 'INVALID_ARGUMENT' } });
    // Asked for compact answers (as the SDK does): an empty map per stored transaction.
    const compact = await conn.request<SendHalfBatchResponse>(
      Command.SEND_HALF_BATCH,
      { group, cr: true, txs: [{ transactionId: 'batch-compact', messages: [wire('MSG-C-1', 'c')] }, { transactionId: 'bad id 2', messages: [wire('MSG-C-2', 'd')] }] },
      Buffer.from('cd'),
    );
    expect(compact.payload.results[0]).toEqual({});
    expect(compact.payload.results[1]).toMatchObject({ e: { code: 'INVALID_ARGUMENT' } });

    const ends = await conn.request<EndTransactionBatchResponse>(Command.END_TRANSACTION_BATCH, {
      ends: [
        { transactionId: 'batch-ok', resolution: 'COMMIT' },
        { transactionId: 'batch-never-sent', resolution: 'COMMIT' },
        { transactionId: 'batch-ok', resolution: 'ROLLBACK' },
      ],
    });
    expect(ends.payload.results[0]).toEqual({ state: 'COMMITTED', changed: true });
    expect(ends.payload.results[1]).toMatchObject({ e: { code: 'TX_NOT_FOUND' } });
    expect(ends.payload.results[2]).toMatchObject({ e: { code: 'TX_CONFLICT' } });
    // Compact answers (as the SDK asks): `changed` alone; the state follows from the resolution.
    const compactEnds = await conn.request<EndTransactionBatchResponse>(Command.END_TRANSACTION_BATCH, {
      cr: true,
      ends: [
        { transactionId: 'batch-compact', resolution: 'COMMIT' },
        { transactionId: 'batch-compact', resolution: 'COMMIT' },
        { transactionId: 'batch-never-sent', resolution: 'ROLLBACK' },
      ],
    });
    expect(compactEnds.payload.results).toEqual([true, false, expect.objectContaining({ e: expect.objectContaining({ code: 'TX_NOT_FOUND' }) })]);
    // END_LISTS: the producer's ends as id lists, answered commits first; a bad id fails alone.
    const listed = await conn.request<EndTransactionBatchResponse>(Command.END_TRANSACTION_BATCH, {
      cr: true,
      commit: ['batch-compact', 42],
      rollback: ['batch-ok', 'batch-never-sent'],
    });
    expect(listed.payload.results).toEqual([
      false,
      expect.objectContaining({ e: expect.objectContaining({ code: 'INVALID_ARGUMENT' }) }),
      expect.objectContaining({ e: expect.objectContaining({ code: 'TX_CONFLICT' }) }),
      expect.objectContaining({ e: expect.objectContaining({ code: 'TX_NOT_FOUND' }) }),
    ]);
    await expect(conn.request(Command.END_TRANSACTION_BATCH, { commit: 'batch-ok' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // Body bytes that no message claims fail the whole request as for a single SEND_HALF, and the
    // connection stays usable.
    await expect(
      conn.request(Command.SEND_HALF_BATCH, { group, txs: [{ transactionId: 'batch-x', messages: [wire('MSG-X-1', 'x')] }] }, Buffer.from('xextra')),
    ).rejects.toMatchObject({ code: 'MALFORMED_FRAME' });
    await expect(
      conn.request(Command.SEND_HALF, { group, transactionId: 'batch-y', messages: [wire('MSG-Y-1', 'y')] }, Buffer.from('yextra')),
    ).rejects.toMatchObject({ code: 'MALFORMED_FRAME' });
    expect(bodies(await consumeAll(broker.endpoints, [topic])).sort()).toEqual(['c', 'ok']);
  });

  it('halves sent as records (RECORD_HALF): stored as sent, and one that does not name its transaction fails alone', async () => {
    const topic = uniqueName('txr');
    const group = uniqueName('pg');
    const conn = new Connection({ endpoints: broker.endpoints, producerGroup: group });
    cleanup.push(() => conn.close());
    const hello = await conn.connect();
    expect(hello.features).toContain(BrokerFeature.RECORD_HALF);
    const half = (txId: string, msgId: string, body: string, marks: { id?: string; group?: string } = {}): RecordInput => ({
      type: RecordType.PREPARED,
      topic,
      queueId: 0,
      msgId,
      keys: ['order-1'],
      properties: { [TX_ID_PROPERTY]: marks.id ?? txId, [TX_GROUP_PROPERTY]: marks.group ?? group, user: 'kept' },
      body: Buffer.from(body),
      bornTimestamp: Date.now(),
      reconsumeTimes: 0,
    });
    const noMarks = half('rec-none', 'MSG-R-0', 'r0');
    delete noMarks.properties[TX_ID_PROPERTY];
    // Each run of records with the same __TX_ID is one transaction, answered in order.
    const halves = await conn.request<SendHalfBatchResponse>(
      Command.SEND_HALF_BATCH,
      { group, cr: true, records: 6 },
      encodeUnstampedRecords([
        half('rec-ok', 'MSG-R-1', 'r1'),
        half('rec-ok', 'MSG-R-2', 'r2'),
        half('rec-wrong-group', 'MSG-R-4', 'r4', { group: 'someone-else' }),
        noMarks,
        half('rec-big', 'bad msg id', 'r5'),
        half('rec-two', 'MSG-R-7', 'r7'),
      ]),
    );
    expect(halves.payload.results).toEqual([
      {},
      expect.objectContaining({ e: expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(`__TX_GROUP=${group}`) }) }),
      expect.objectContaining({ e: expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('__TX_ID') }) }),
      expect.objectContaining({ e: expect.objectContaining({ code: 'INVALID_ARGUMENT' }) }),
      {},
    ]);
    // Nothing of a half is visible before its commit; the refused ones never were transactions.
    expect(await consumeAll(broker.endpoints, [topic], 300)).toEqual([]);
    const ends = await conn.request<EndTransactionBatchResponse>(Command.END_TRANSACTION_BATCH, { cr: true, commit: ['rec-ok', 'rec-wrong-group', 'rec-two'], rollback: [] });
    expect(ends.payload.results).toEqual([true, expect.objectContaining({ e: expect.objectContaining({ code: 'TX_NOT_FOUND' }) }), true]);
    const seen = await consumeAll(broker.endpoints, [topic]);
    expect(bodies(seen).sort()).toEqual(['r1', 'r2', 'r7']);
    expect(seen[0]).toMatchObject({ keys: ['order-1'], properties: { user: 'kept', [TX_ID_PROPERTY]: 'rec-ok', [TX_GROUP_PROPERTY]: group } });
    // A record whose framing is broken fails the whole frame, as in a SEND; the connection stays usable.
    const one = encodeUnstampedRecords([half('rec-short', 'MSG-R-5', 'r5')]);
    await expect(conn.request(Command.SEND_HALF_BATCH, { group, records: 1 }, one.subarray(0, one.length - 1))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('record 0'),
    });
    const single = await conn.request(Command.SEND_HALF, { group, transactionId: 'rec-single', records: 1, cr: true }, encodeUnstampedRecords([half('rec-single', 'MSG-R-6', 'r6')]));
    expect(single.payload).toEqual({});
  });
});

describe('transactions across a broker crash', () => {
  it('kill -9 between half and end: the transaction is still resolvable, and one nobody ends is resolved by check', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const topic = uniqueName('txc');
    const group = uniqueName('pg');
    let b = await startBrokerProcess({ dataDir, args: TX_FLAGS });
    cleanup.push(() => b.kill9());
    const decided = new Map<string, LocalTransactionState>();
    // This producer's checker is wired to the local "database" (the map) from the start.
    const p = new TransactionProducer({ endpoints: b.endpoints, group, checker: async (m) => decided.get(m.transactionId) ?? 'UNKNOWN' });
    cleanup.push(() => p.shutdown());
    const endedAfterRestart = p.beginTransaction();
    await endedAfterRestart.send({ topic, body: 'ended-after-restart' });
    const checkedAfterRestart = p.beginTransaction();
    await checkedAfterRestart.send({ topic, body: 'checked-after-restart' });
    const rolledBackBefore = await p.sendInTransaction({ topic, body: 'rolled-back-before' }, async () => 'ROLLBACK');
    const committedBefore = await p.sendInTransaction({ topic, body: 'committed-before' }, async () => 'COMMIT');
    await b.kill9();

    b = await startBrokerProcess({ dataDir, port: b.port, args: TX_FLAGS });
    cleanup.push(() => b.kill9());
    expect(b.stderr()).toMatch(/recovered after crash/);
    // The client reconnects by itself; the producer that began it ends it now.
    await endedAfterRestart.commit();
    decided.set(checkedAfterRestart.id, 'COMMIT');
    await waitFor(async () => {
      const a = new Admin({ endpoints: b.endpoints });
      try {
        return (await a.getTransaction(checkedAfterRestart.id)).state === 'COMMITTED';
      } finally {
        await a.shutdown();
      }
    }, 'the check to commit the un-ended transaction after restart');
    const seen = await consumeAll(b.endpoints, [topic]);
    expect(bodies(seen)).toEqual(['checked-after-restart', 'committed-before', 'ended-after-restart']);
    const a = new Admin({ endpoints: b.endpoints });
    cleanup.push(() => a.shutdown());
    expect((await a.getTransaction(rolledBackBefore.transactionId)).state).toBe('ROLLED_BACK');
    expect((await a.getTransaction(committedBefore.transactionId)).state).toBe('COMMITTED');
  });
});
