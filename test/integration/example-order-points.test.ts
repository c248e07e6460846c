import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin } from '../../src/index.js';
import { ROOT, removeDir, startBrokerProcess, tempDir, waitFor } from '../helpers/broker-process.js';
import type { BrokerProcess } from '../helpers/broker-process.js';

/**
 * Runs examples/order-points as a user would: real broker process, the order and points services as
 * their own processes, each with its own PGlite database, crashes by process exit.
 */
const EXAMPLE = path.join(ROOT, 'examples', 'order-points');

class Service {
  readonly child: ChildProcess;
  out = '';
  err = '';
  readonly exited: Promise<number | null>;

  constructor(script: string, args: string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, [path.join(EXAMPLE, script), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.child.stdout!.on('data', (c: Buffer) => (this.out += c.toString()));
    this.child.stderr!.on('data', (c: Buffer) => (this.err += c.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Resolves with the first match of `re` in stdout; fails early if the process exits without one. */
  async line(re: RegExp, timeoutMs = 90_000): Promise<RegExpExecArray> {
    let match: RegExpExecArray | null = null;
    let gone = false;
    void this.exited.then(() => (gone = true));
    await waitFor(
      () => {
        match = re.exec(this.out);
        if (match === null && gone) throw new Error(`process exited without printing ${re}; stdout:\n${this.out}\nstderr:\n${this.err}`);
        return match !== null;
      },
      `${re} in stdout:\n${this.out}\nstderr:\n${this.err}`,
      timeoutMs,
    );
    return match!;
  }

  async exit(timeoutMs = 90_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`process did not exit; stdout:\n${this.out}\nstderr:\n${this.err}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exit();
  }
}

let broker: BrokerProcess;
let admin: Admin;
let dir: string;
const services: Service[] = [];

function run(script: string, ...args: string[]): Service {
  const dbName = script.startsWith('order') ? 'orders' : 'points';
  const service = new Service(script, [...args, '--db', path.join(dir, dbName)], { HALFMQ_SERVER: broker.endpoints });
  services.push(service);
  return service;
}

function count(text: string, re: RegExp): number {
  return [...text.matchAll(new RegExp(re.source, 'g'))].length;
}

beforeAll(async () => {
  // Fast checks. --tx-check-max is generous because checks that find no live producer count too,
  // and after the simulated crash the next order-service instance needs a few seconds to start.
  broker = await startBrokerProcess({ args: ['--flush', 'sync', '--tx-timeout-ms', '500', '--tx-check-interval-ms', '300', '--tx-check-max', '100'] });
  admin = new Admin({ endpoints: broker.endpoints });
  dir = await tempDir('halfmq-order-points-');
});

afterAll(async () => {
  for (const s of services) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  await admin?.shutdown();
  await broker?.stop();
  if (broker) await removeDir(broker.dataDir);
  if (dir) await removeDir(dir);
});

describe('examples/order-points', () => {
  it('credits every committed order exactly once, the crashed one after its check-back, the rejected one never', async () => {
    // Points service, first life: dies right after its 2nd credit is committed, before the ack.
    // Started alongside the first orders (both create their PGlite database on first use).
    const points1 = run('points-service.mjs', '--crash-after-credit', '2');
    const place = run('order-service.mjs', 'place', 'o-1:alice:30', 'o-2:bob:50', 'o-3:carol:0');
    expect(await place.exit()).toBe(0);
    expect(place.out).toMatch(/committed order o-1 /);
    expect(place.out).toMatch(/committed order o-2 /);
    expect(place.out).toMatch(/rejected order o-3: .*check constraint.*\(rolled back\)/);

    expect(await points1.exit()).toBe(3);
    const crashedOn = (await points1.line(/crashing after crediting order (o-\d), before the ack/))[1]!;

    // Second life: the unacked event comes again and is recognised as already credited.
    const points2 = run('points-service.mjs');
    await points2.line(new RegExp(`skipped order ${crashedOn}: already credited`));

    // The order service crashes after committing o-4 locally, before telling the broker.
    const crash = run('order-service.mjs', 'place', 'o-4:alice:20', '--crash-after-local-commit');
    expect(await crash.exit()).toBe(3);
    const o4Tx = (await crash.line(/local commit of order o-4 \(transaction (\w+)\)/))[1]!;
    // With no producer of the group alive, nobody can answer the check: the event stays invisible.
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await admin.getTransaction(o4Tx)).state).toBe('PREPARED');
    expect(points2.out).not.toMatch(/order o-4/);

    // A fresh order-service instance answers the check from its tx_log: COMMIT.
    const serve = run('order-service.mjs', 'serve');
    await serve.line(new RegExp(`check-back: transaction ${o4Tx} \\(order o-4\\) -> COMMIT`));
    await points2.line(/credited order o-4: alice \+20 points/);
    await waitFor(async () => {
      const status = await admin.groupStatus('points-service');
      return status.totalLag === 0 && status.queues.every((q) => q.inflight === 0);
    }, 'the points group to ack everything');
    const o4 = await admin.getTransaction(o4Tx);
    expect(o4).toMatchObject({ state: 'COMMITTED', resolvedBy: 'check' });

    expect(await points2.stop()).toBe(0);
    expect(await serve.stop()).toBe(0);

    // Across both lives of the points service, each committed order was credited once.
    const allPointsOutput = points1.out + points2.out;
    for (const id of ['o-1', 'o-2', 'o-4']) expect(count(allPointsOutput, new RegExp(`credited order ${id}:`)), id).toBe(1);
    expect(allPointsOutput).not.toMatch(/order o-3/);

    const pointsReport = run('points-service.mjs', 'report');
    expect(await pointsReport.exit()).toBe(0);
    const { accounts, processed } = JSON.parse(pointsReport.out) as { accounts: unknown[]; processed: { orderId: string }[] };
    expect(accounts).toEqual([
      { customer: 'alice', points: 50 },
      { customer: 'bob', points: 50 },
    ]);
    expect(processed.map((p) => p.orderId)).toEqual(['o-1', 'o-2', 'o-4']);

    const ordersReport = run('order-service.mjs', 'report');
    expect(await ordersReport.exit()).toBe(0);
    const { orders, txLog } = JSON.parse(ordersReport.out) as { orders: { id: string }[]; txLog: { transactionId: string; orderId: string }[] };
    expect(orders.map((o) => o.id)).toEqual(['o-1', 'o-2', 'o-4']);
    expect(txLog.map((t) => t.orderId)).toEqual(['o-1', 'o-2', 'o-4']);
    expect(txLog.find((t) => t.orderId === 'o-4')!.transactionId).toBe(o4Tx);

    // The rejected order's event was rolled back by the producer and never became visible.
    const all = await admin.listTransactions({ state: 'all', limit: 100 });
    const o3 = all.find((t) => t.messages.some((m) => m.keys.includes('o-3')));
    expect(o3).toMatchObject({ state: 'ROLLED_BACK', resolvedBy: 'producer' });
  }, 180_000);
});
