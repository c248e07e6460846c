import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TransactionConflictError, TransactionNotFoundError } from '../../../src/common/errors.js';
import { TransactionService } from '../../../src/broker/transaction-service.js';
import { transition } from '../../../src/broker/transaction-state.js';
import { RECENT_LIMIT, TransactionTable } from '../../../src/broker/transaction-table.js';
import type { Transaction } from '../../../src/broker/transaction-table.js';
import { MessageStore, MetadataStore, RecordType } from '../../../src/storage/index.js';
import type { RecordInput } from '../../../src/storage/index.js';

describe('transaction state machine', () => {
  it('follows its table: first resolution wins, repeats are no-ops, conflicts are refused', () => {
    expect(transition('t', 'PREPARED', 'COMMIT')).toEqual({ state: 'COMMITTED', changed: true });
    expect(transition('t', 'PREPARED', 'ROLLBACK')).toEqual({ state: 'ROLLED_BACK', changed: true });
    expect(transition('t', 'PREPARED', 'PARK')).toEqual({ state: 'PARKED', changed: true });
    expect(transition('t', 'PARKED', 'COMMIT')).toEqual({ state: 'COMMITTED', changed: true });
    expect(transition('t', 'PARKED', 'ROLLBACK')).toEqual({ state: 'ROLLED_BACK', changed: true });
    expect(transition('t', 'PARKED', 'PARK')).toEqual({ state: 'PARKED', changed: false });
    expect(transition('t', 'COMMITTED', 'COMMIT')).toEqual({ state: 'COMMITTED', changed: false });
    expect(transition('t', 'ROLLED_BACK', 'ROLLBACK')).toEqual({ state: 'ROLLED_BACK', changed: false });
    expect(transition('t', 'COMMITTED', 'PARK')).toEqual({ state: 'COMMITTED', changed: false });
    expect(() => transition('t', 'COMMITTED', 'ROLLBACK')).toThrow(TransactionConflictError);
    expect(() => transition('t', 'ROLLED_BACK', 'COMMIT')).toThrow(TransactionConflictError);
  });
});

describe('TransactionService on a real store', () => {
  const dirs: string[] = [];
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  async function open(dataDir?: string) {
    const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'halfmq-tx-')));
    if (!dataDir) dirs.push(dir);
    const store = await MessageStore.open({ dataDir: dir, flush: 'sync', log: () => undefined });
    const metadata = await MetadataStore.open(dir);
    closers.push(async () => {
      await store.close();
      await metadata.close();
    });
    const table = new TransactionTable(metadata);
    const service = new TransactionService({ store, table, log: () => undefined, timings: { timeoutMs: 1000, checkIntervalMs: 1000, checkMax: 3 } });
    return { dir, store, metadata, table, service };
  }

  const half = (msgId: string, body: string, topic = 'orders'): RecordInput => ({
    type: RecordType.PREPARED,
    topic,
    queueId: 0,
    msgId,
    keys: [],
    properties: {},
    body: Buffer.from(body),
    bornTimestamp: Date.now(),
    reconsumeTimes: 0,
  });

  it('stores a retried half once, so a commit delivers it once', async () => {
    const { store, service } = await open();
    await service.prepare('tx1', 'pg', [half('m1', 'a'), half('m2', 'b')], 0);
    await service.prepare('tx1', 'pg', [half('m1', 'a'), half('m2', 'b')], 0); // the retry
    await service.prepare('tx1', 'pg', [half('m3', 'c', 'points')], 0); // a new half joins
    expect(await service.end('tx1', 'COMMIT', 'producer')).toEqual({ state: 'COMMITTED', changed: true });
    expect((await store.readQueue('orders', 0, 0, 10)).records.map((r) => r.body.toString())).toEqual(['a', 'b']);
    expect((await store.readQueue('points', 0, 0, 10)).records.map((r) => r.body.toString())).toEqual(['c']);
    await expect(service.prepare('tx1', 'pg', [half('m4', 'd')], 0)).rejects.toBeInstanceOf(TransactionConflictError);
    await expect(service.end('nope', 'COMMIT', 'producer')).rejects.toBeInstanceOf(TransactionNotFoundError);
  });

  it('rebuilds every transaction from the log alone when level lost all writes', async () => {
    const first = await open();
    await first.service.prepare('open', 'pg', [half('o1', 'open')], 0);
    await first.service.prepare('committed', 'pg', [half('c1', 'c')], 0);
    await first.service.end('committed', 'COMMIT', 'producer');
    await first.service.prepare('rolled', 'pg', [half('r1', 'r')], 0);
    await first.service.end('rolled', 'ROLLBACK', 'check');
    await first.service.prepare('parked', 'pg', [half('p1', 'p')], 0);
    await first.service.park('parked');
    // No flush of the table ever ran: level has nothing. Rebuild from the start of the log.
    const table = new TransactionTable(first.metadata);
    const service = new TransactionService({ store: first.store, table, log: () => undefined, timings: { timeoutMs: 1000, checkIntervalMs: 1000, checkMax: 3 } });
    const { open: openCount } = await service.rebuild(0);
    expect(openCount).toBe(2);
    expect((await table.get('open'))?.state).toBe('PREPARED');
    expect((await table.get('committed'))?.state).toBe('COMMITTED');
    expect((await table.get('rolled'))).toMatchObject({ state: 'ROLLED_BACK', resolvedBy: 'check' });
    expect((await table.get('parked'))?.state).toBe('PARKED');
    // and a rebuilt open transaction can still be committed, once
    await service.end('open', 'COMMIT', 'producer');
    expect((await first.store.readQueue('orders', 0, 0, 10)).records.map((r) => r.body.toString()).sort()).toEqual(['c', 'open']);
  });

  it('stores the halves of one tick with one append; a bad half fails only its own transaction', async () => {
    const { store, service, table } = await open();
    const before = store.stats;
    await Promise.all(['h1', 'h2', 'h3'].map((id) => service.prepare(id, 'pg', [half(`${id}-m`, id)], 0)));
    expect(store.stats.appends - before.appends).toBe(1);
    expect(store.stats.records - before.records).toBe(3);
    const badTag = { ...half('bad-m', 'bad'), tag: 'x'.repeat(70_000) }; // longer than a record's tag field
    const outcomes = await Promise.allSettled([service.prepare('ok', 'pg', [half('ok-m', 'ok')], 0), service.prepare('bad', 'pg', [badTag], 0)]);
    expect(outcomes[0]!.status).toBe('fulfilled');
    expect(outcomes[1]!.status).toBe('rejected');
    expect(table.peek('ok')?.state).toBe('PREPARED');
    expect(table.peek('bad')).toBeUndefined();
    for (const id of ['h1', 'h2', 'h3', 'ok']) expect(await service.end(id, 'COMMIT', 'producer')).toEqual({ state: 'COMMITTED', changed: true });
    expect((await store.readQueue('orders', 0, 0, 10)).records.map((r) => r.body.toString()).sort()).toEqual(['h1', 'h2', 'h3', 'ok']);
  });

  it('a batch frame prepares and ends its transactions together, yet each settles as it would alone', async () => {
    const { store, service, table } = await open();
    await service.prepare('known', 'pg', [half('k1', 'k1')], 0);
    const badTag = { ...half('bad-m', 'bad'), tag: 'x'.repeat(70_000) }; // longer than a record's tag field
    const before = store.stats;
    const prepared = await service.prepareMany([
      { id: 'p1', group: 'pg', records: [half('p1-m', 'p1')], checkImmunityMs: 0 },
      { id: 'p2', group: 'pg', records: [half('p2-m', 'p2')], checkImmunityMs: 0 },
      // the same id again in the frame: it joins the transaction the entry before created
      { id: 'p1', group: 'pg', records: [half('p1-m2', 'p1b', 'points')], checkImmunityMs: 0 },
      // a retried half of a known transaction is stored once
      { id: 'known', group: 'pg', records: [half('k1', 'k1')], checkImmunityMs: 0 },
      { id: 'bad', group: 'pg', records: [badTag], checkImmunityMs: 0 },
      { id: 'known', group: 'other-group', records: [half('k2', 'k2')], checkImmunityMs: 0 },
    ]);
    expect(prepared.map((s) => s.ok)).toEqual([true, true, true, true, false, false]);
    expect(table.peek('p1')?.halves.map((h) => h.msgId)).toEqual(['p1-m', 'p1-m2']);
    expect(table.peek('known')?.halves.map((h) => h.msgId)).toEqual(['k1']);
    expect(table.peek('bad')).toBeUndefined();
    expect(store.stats.records - before.records).toBe(3); // p1-m, p2-m, p1-m2

    await service.prepare('rolled', 'pg', [half('r1', 'r')], 0);
    await service.end('rolled', 'ROLLBACK', 'producer');
    const beforeEnd = store.stats;
    const ended = await service.endMany([
      { id: 'p1', resolution: 'COMMIT', source: 'producer' },
      { id: 'p1', resolution: 'COMMIT', source: 'producer' }, // a repeat in the same frame: no second release
      { id: 'p2', resolution: 'ROLLBACK', source: 'producer' },
      { id: 'known', resolution: 'COMMIT', source: 'producer' },
      { id: 'never-sent', resolution: 'COMMIT', source: 'producer' },
      { id: 'rolled', resolution: 'COMMIT', source: 'producer' },
      { id: 'p1', resolution: 'ROLLBACK', source: 'producer' },
    ]);
    const answers = ended.map((s) => (s.ok ? s.value : (s.error as { code: string }).code));
    expect(answers).toEqual([
      { state: 'COMMITTED', changed: true },
      { state: 'COMMITTED', changed: false },
      { state: 'ROLLED_BACK', changed: true },
      { state: 'COMMITTED', changed: true },
      'TX_NOT_FOUND',
      'TX_CONFLICT',
      'TX_CONFLICT',
    ]);
    // one RELEASE for the frame's two commits, one TX_OP for the rollback
    expect(store.stats.records - beforeEnd.records).toBe(2);
    expect((await store.readQueue('orders', 0, 0, 10)).records.map((r) => r.body.toString()).sort()).toEqual(['k1', 'p1']);
    expect((await store.readQueue('points', 0, 0, 10)).records.map((r) => r.body.toString())).toEqual(['p1b']);
    expect(await service.endMany([{ id: 'p1', resolution: 'COMMIT', source: 'producer' }])).toEqual([{ ok: true, value: { state: 'COMMITTED', changed: false } }]);
  });

  it('commits of one tick share one RELEASE record, and a rebuild from the log commits each of them', async () => {
    const first = await open();
    const ids = ['b1', 'b2', 'b3'];
    for (const id of ids) await first.service.prepare(id, 'pg', [half(`${id}-m`, id)], 0);
    await first.service.prepare('other', 'pg', [half('other-m', 'other')], 0);
    const before = first.store.stats;
    const ended = await Promise.all([...ids.map((id) => first.service.end(id, 'COMMIT', 'producer')), first.service.end('other', 'COMMIT', 'check')]);
    expect(ended.every((e) => e.changed)).toBe(true);
    // One record for the producer's three commits, one for the check-back's.
    expect(first.store.stats.records - before.records).toBe(2);
    expect((await first.store.readQueue('orders', 0, 0, 10)).records.map((r) => r.body.toString()).sort()).toEqual(['b1', 'b2', 'b3', 'other']);
    const table = new TransactionTable(first.metadata);
    const service = new TransactionService({ store: first.store, table, log: () => undefined, timings: { timeoutMs: 1000, checkIntervalMs: 1000, checkMax: 3 } });
    await service.rebuild(0);
    for (const id of ids) expect(await table.get(id)).toMatchObject({ state: 'COMMITTED', resolvedBy: 'producer' });
    expect(await table.get('other')).toMatchObject({ state: 'COMMITTED', resolvedBy: 'check' });
    expect(table.openCount).toBe(0);
  });

  it('level holds only transactions open at a sync (then their resolution); short-lived ones never touch it', async () => {
    const { table, service, metadata } = await open();
    const persisted = async (): Promise<Record<string, string>> => {
      const out: Record<string, string> = {};
      for await (const tx of metadata.sublevel<{ id: string; state: string }>('tx').values()) out[tx.id] = tx.state;
      return out;
    };
    await service.prepare('quick', 'pg', [half('q1', 'q')], 0);
    await service.end('quick', 'COMMIT', 'producer');
    await service.prepare('long', 'pg', [half('l1', 'l')], 0);
    await table.sync(); // a checkpoint passes: 'long' is open, 'quick' already resolved
    expect(await persisted()).toEqual({ long: 'PREPARED' });
    // Fewer created since than open (the sync above looked at the open ones, this one at the new)
    await service.prepare('later', 'pg', [half('n1', 'n')], 0);
    await table.sync();
    expect(await persisted()).toEqual({ long: 'PREPARED', later: 'PREPARED' });

    await service.end('long', 'ROLLBACK', 'producer');
    await table.sync();
    expect(await persisted()).toEqual({ long: 'ROLLED_BACK', later: 'PREPARED' });
    // A fresh table (a restart) loads only what is open, and still answers for the rest from level or memory.
    const restarted = new TransactionTable(metadata);
    expect(await restarted.load()).toBe(1);
    expect((await restarted.get('long'))?.state).toBe('ROLLED_BACK');
    expect((await table.get('quick'))?.state).toBe('COMMITTED');
    expect((await table.listAll(10)).map((t) => t.id).sort()).toEqual(['later', 'long', 'quick']);
  });

  /** A table entry as the service would save it: `t<i>`, of group pg. */
  const tx = (i: number | string, state: Transaction['state'], nextCheckAt = 0): Transaction => ({ id: `t${i}`, group: 'pg', state, createdAt: 0, checkTimes: 0, nextCheckAt, halves: [] });

  it('hands out due transactions in check-time order and only when due', async () => {
    const { service, table } = await open();
    await service.prepare('a', 'pg', [half('a1', 'a')], 0);
    await service.prepare('b', 'pg', [half('b1', 'b')], 5_000); // immunity: checked later
    const now = Date.now();
    expect(table.takeDue(now, 10)).toEqual([]);
    const due = table.takeDue(now + 1_500, 10);
    expect(due.map((t) => t.id)).toEqual(['a']);
    service.recordCheck(due[0]!, now + 1_500);
    expect(table.takeDue(now + 2_000, 10)).toEqual([]);
    expect(table.takeDue(now + 6_000, 10).map((t) => t.id).sort()).toEqual(['a', 'b']);
  });

  it('holds due-heap entries for open transactions, not for every one resolved before its check time', async () => {
    const { table } = await open();
    table.save(tx('open-early', 'PREPARED', 1_000));
    table.save(tx('open-late', 'PREPARED', 90_000));
    // What load looks like: each transaction prepared, then resolved long before it would be checked.
    for (let i = 0; i < 20_000; i++) {
      table.save(tx(i, 'PREPARED', 10_000 + i));
      table.save(tx(i, 'COMMITTED', 10_000 + i));
    }
    // A heap cannot delete cheaply, so resolved entries stay until it is rebuilt: bounded, not 20,000.
    const dueEntries = (table as unknown as { due: { size: number } }).due.size;
    expect(dueEntries).toBeLessThan(5_000);
    // Rebuilds keep every open transaction's check, in order.
    expect(table.takeDue(1_000, 10).map((t) => t.id)).toEqual(['topen-early']);
    expect(table.takeDue(80_000, 10)).toEqual([]);
    expect(table.takeDue(90_000, 10).map((t) => t.id)).toEqual(['topen-late']);
  });

  it('keeps the newest resolved transactions in memory, oldest out first, none whose resolution level still needs', async () => {
    const { table, metadata } = await open();
    // 'tlate' was open when a sync passed, so level holds it as open: its resolution must reach level.
    table.save(tx('late', 'PREPARED'));
    await table.sync();
    table.save(tx('late', 'COMMITTED'));
    const extra = 10;
    for (let i = 0; i < RECENT_LIMIT + extra; i++) table.save(tx(i, 'COMMITTED'));
    // Nothing may be dropped past 'tlate' until its resolution is written.
    expect(table.peek('tlate')?.state).toBe('COMMITTED');
    expect(table.peek('t0')).toBeDefined();
    await table.sync();
    const persisted: Record<string, string> = {};
    for await (const t of metadata.sublevel<Transaction>('tx').values()) persisted[t.id] = t.state;
    expect(persisted).toEqual({ tlate: 'COMMITTED' });
    table.save(tx(RECENT_LIMIT + extra, 'COMMITTED'));
    expect(table.peek('tlate')).toBeUndefined();
    expect(table.peek(`t${extra}`)).toBeUndefined();
    expect(table.peek(`t${extra + 1}`)?.state).toBe('COMMITTED');
    expect(table.peek(`t${RECENT_LIMIT + extra}`)?.state).toBe('COMMITTED');
    // Saving a known one again (a replay) neither duplicates nor reorders it.
    table.save(tx(extra + 1, 'COMMITTED'));
    table.save(tx(RECENT_LIMIT + extra + 1, 'COMMITTED'));
    expect(table.peek(`t${extra + 1}`)).toBeUndefined();
    expect(table.peek(`t${extra + 2}`)).toBeDefined();
  });
});
