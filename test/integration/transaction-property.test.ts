import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { Admin, SimpleConsumer, TransactionProducer } from '../../src/index.js';
import type { LocalTransactionState, Transaction } from '../../src/index.js';
import { removeDir, startBrokerProcess, tempDir, uniqueName, waitFor } from '../helpers/broker-process.js';
import type { BrokerProcess } from '../helpers/broker-process.js';

/**
 * Random interleavings of: begin (send halves), end (local commit/rollback, then END), decide
 * without END (the end is lost: a crash of the producer), kill -9 of the broker + restart, and
 * pauses that let the checker run. Whatever the order, once every local decision is known:
 *   - nothing is visible unless its transaction committed,
 *   - nothing committed is lost,
 *   - each committed message is visible exactly once.
 * The checker answers from the "local database" (the decisions map), as a real one must.
 */
type Action =
  | { kind: 'begin'; messages: number; decision: 'COMMIT' | 'ROLLBACK' }
  | { kind: 'end'; pick: number }
  | { kind: 'decideOnly'; pick: number }
  | { kind: 'crash' }
  | { kind: 'pause'; ms: number };

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('begin' as const), messages: fc.integer({ min: 1, max: 3 }), decision: fc.constantFrom('COMMIT' as const, 'ROLLBACK' as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('end' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('decideOnly' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('crash' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('pause' as const), ms: fc.integer({ min: 0, max: 400 }) }) },
);

const TX_FLAGS = ['--tx-timeout-ms', '200', '--tx-check-interval-ms', '150', '--tx-check-max', '1000'];

interface ModelTx {
  tx: Transaction;
  bodies: string[];
  /** what the local transaction will decide (or decided) */
  decision: 'COMMIT' | 'ROLLBACK';
  /** the local transaction has run: the checker may now answer with `decision` */
  decided: boolean;
  ended: boolean;
}

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

async function runScenario(actions: Action[]): Promise<void> {
  const dataDir = await tempDir();
  const topic = uniqueName('prop');
  let broker: BrokerProcess = await startBrokerProcess({ dataDir, args: TX_FLAGS });
  const port = broker.port;
  const local = new Map<string, LocalTransactionState>();
  const producer = new TransactionProducer({
    endpoints: broker.endpoints,
    group: uniqueName('pg'),
    checker: async (m) => local.get(m.transactionId) ?? 'UNKNOWN',
    connectTimeoutMs: 15_000,
  });
  const txs: ModelTx[] = [];
  let seq = 0;
  try {
    for (const a of actions) {
      if (a.kind === 'begin') {
        const tx = producer.beginTransaction();
        const bodies = Array.from({ length: a.messages }, () => `${topic}-m${seq++}`);
        const m: ModelTx = { tx, bodies, decision: a.decision, decided: false, ended: false };
        txs.push(m);
        try {
          for (const body of bodies) await tx.send({ topic, body });
        } catch {
          // The halves may or may not be stored; the local transaction never ran: it rolls back.
          m.decision = 'ROLLBACK';
          m.decided = true;
          local.set(tx.id, 'ROLLBACK');
        }
      } else if (a.kind === 'end' || a.kind === 'decideOnly') {
        const open = txs.filter((t) => !t.ended && t.tx.messageIds.length > 0);
        const m = open[a.pick % Math.max(1, open.length)];
        if (!m) continue;
        m.decided = true;
        local.set(m.tx.id, m.decision); // the local commit/rollback, durable before END
        if (a.kind === 'end') {
          m.ended = true;
          await (m.decision === 'COMMIT' ? m.tx.commit() : m.tx.rollback()).catch(() => undefined); // lost END: the check resolves it
        }
      } else if (a.kind === 'crash') {
        await broker.kill9();
        broker = await startBrokerProcess({ dataDir, port, args: TX_FLAGS });
      } else {
        await new Promise((r) => setTimeout(r, a.ms));
      }
    }
    // Every local transaction eventually finishes; the checker then resolves the rest.
    for (const m of txs) local.set(m.tx.id, m.decision);
    const admin = new Admin({ endpoints: broker.endpoints });
    try {
      await waitFor(async () => (await admin.listTransactions({ state: 'prepared' })).length === 0, 'every transaction to be resolved', 30_000);
    } finally {
      await admin.shutdown();
    }
    const consumer = new SimpleConsumer({ endpoints: broker.endpoints, group: uniqueName('g'), subscriptions: { [topic]: '*' } });
    const seen: string[] = [];
    try {
      await consumer.start().catch((err: unknown) => {
        // No transaction ever committed and none was prepared: the topic may not exist at all.
        if ((err as { code?: string }).code !== 'TOPIC_NOT_FOUND') throw err;
      });
      if (consumer.state === 'running') {
        for (;;) {
          const batch = await consumer.receive(256, 600);
          if (batch.length === 0) break;
          seen.push(...batch.map((m) => m.body.toString()));
          await consumer.ack(batch);
        }
      }
    } finally {
      await consumer.shutdown();
    }
    const committed = txs.filter((t) => t.decision === 'COMMIT' && t.tx.messageIds.length === t.bodies.length).flatMap((t) => t.bodies);
    const neverVisible = new Set(txs.filter((t) => t.decision === 'ROLLBACK').flatMap((t) => t.bodies));
    const lost = committed.filter((b) => !seen.includes(b));
    if (lost.length > 0) {
      // Say which transactions and what the broker thinks of them, to tell a real loss from a slow read.
      const a = new Admin({ endpoints: broker.endpoints });
      try {
        for (const t of txs.filter((x) => x.bodies.some((b) => lost.includes(b)))) {
          const info = await a.getTransaction(t.tx.id).catch((e: unknown) => ({ error: String(e) }));
          console.error('lost transaction', t.tx.id, t.bodies, JSON.stringify(info));
        }
      } finally {
        await a.shutdown();
      }
    }
    expect(seen.filter((b) => neverVisible.has(b)), 'nothing visible unless committed').toEqual([]);
    expect(new Set(seen).size, 'each committed message visible once').toBe(seen.length);
    expect(lost, 'nothing committed lost').toEqual([]);
  } finally {
    await producer.shutdown();
    await broker.stop();
    await removeDir(dataDir);
  }
}

describe('transaction invariants under random interleavings (property)', () => {
  it('holds: nothing visible unless committed, nothing committed lost, each committed visible once', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 3, maxLength: 12 }), async (actions) => {
        await runScenario(actions);
      }),
      // Each run starts real broker processes; a handful of runs, no shrinking, keeps CI bounded.
      { numRuns: Number(process.env.HALFMQ_PROPERTY_RUNS ?? 6), endOnFailure: true, ...(process.env.HALFMQ_PROPERTY_SEED ? { seed: Number(process.env.HALFMQ_PROPERTY_SEED) } : {}) },
    );
  }, 900_000);
});
