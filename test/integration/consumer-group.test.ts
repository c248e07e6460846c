import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Admin, Producer, PushConsumer } from '../../src/index.js';
import { ROOT, removeDir, startBrokerProcess, uniqueName, waitFor } from '../helpers/broker-process.js';
import { Command, PROTOCOL_VERSION } from '../../src/protocol/commands.js';
import { encodeFrame } from '../../src/protocol/frame.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

describe('consumer group in clustering mode', () => {
  it('shares queues between two members; when one is killed the other takes over and nothing is lost', async () => {
    const broker = await startBrokerProcess();
    cleanup.push(async () => {
      await broker.stop();
      await removeDir(broker.dataDir);
    });
    const topic = uniqueName('fail');
    const group = uniqueName('g');
    const admin = new Admin({ endpoints: broker.endpoints });
    cleanup.push(() => admin.shutdown());
    await admin.createTopic(topic, { queues: 4 });

    // Member A: a separate, slow process we will kill -9.
    const a = spawn(process.execPath, [path.join(ROOT, 'test/fixtures/slow-consumer.mjs'), broker.endpoints, group, topic, '15'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const aExited = new Promise((r) => a.once('exit', r));
    cleanup.push(async () => {
      a.kill('SIGKILL');
      await aExited;
    });
    const doneByA = new Set<string>();
    let aOut = '';
    a.stdout!.on('data', (c: Buffer) => {
      aOut += c.toString();
      for (const m of aOut.matchAll(/^DONE (.+)$/gm)) doneByA.add(m[1]!);
    });
    await waitFor(() => aOut.includes('READY'), 'member A to start');

    // Member B: in this process.
    const doneByB = new Set<string>();
    const b = new PushConsumer({
      endpoints: broker.endpoints,
      group,
      subscriptions: { [topic]: '*' },
      handler: async (msg) => {
        doneByB.add(msg.body.toString());
      },
    });
    await b.start();
    cleanup.push(() => b.shutdown());

    await waitFor(async () => {
      const s = await admin.groupStatus(group);
      // Only the topic's queues: the group's retry queue (%RETRY%group) goes to one of them too.
      return s.members.length === 2 && s.members.every((m) => m.queues.filter((q) => q.startsWith(topic)).length === 2);
    }, 'two members with two queues each');

    const producer = new Producer({ endpoints: broker.endpoints });
    cleanup.push(() => producer.shutdown());
    const bodies = Array.from({ length: 400 }, (_, i) => `f-${i}`);
    await Promise.all(bodies.map((body) => producer.send({ topic, body })));

    // Both members get work while both live.
    await waitFor(() => doneByA.size >= 10 && doneByB.size >= 10, 'both members consuming');
    a.kill('SIGKILL');
    await aExited;

    await waitFor(async () => {
      const s = await admin.groupStatus(group);
      return s.members.length === 1 && s.members[0]!.queues.filter((q) => q.startsWith(topic)).length === 4;
    }, 'the survivor to own all four queues');
    await waitFor(() => bodies.every((x) => doneByA.has(x) || doneByB.has(x)), 'every message consumed by someone', 30_000);
    // The survivor took over the dead member's unfinished work, not just its own.
    expect(bodies.filter((x) => !doneByA.has(x)).every((x) => doneByB.has(x))).toBe(true);
    expect(doneByB.size).toBeGreaterThan(200);
    await waitFor(async () => (await admin.groupStatus(group)).totalLag === 0, 'lag 0 after all acked');
  });

  it('a member that stops heart-beating (socket still open) loses its queues to the live ones', async () => {
    const broker = await startBrokerProcess({ args: ['--heartbeat-timeout-ms', '800'] });
    cleanup.push(async () => {
      await broker.stop();
      await removeDir(broker.dataDir);
    });
    const topic = uniqueName('hb');
    const group = uniqueName('g');
    const admin = new Admin({ endpoints: broker.endpoints });
    cleanup.push(() => admin.shutdown());
    await admin.createTopic(topic, { queues: 4 });

    // A member that joins and then falls silent without closing its socket (a hung process).
    const silent = net.connect(broker.port, '127.0.0.1');
    cleanup.push(async () => void silent.destroy());
    silent.on('error', () => undefined);
    await new Promise((resolve) => silent.once('connect', resolve));
    silent.write(Buffer.concat([
      ...encodeFrame({ c: Command.HELLO, i: 1, f: 0, d: { version: PROTOCOL_VERSION, clientId: 'hung-member' } }),
      ...encodeFrame({ c: Command.JOIN_GROUP, i: 2, f: 0, d: { group, subscriptions: { [topic]: '*' } } }),
    ]));

    const got = new Set<string>();
    const live = new PushConsumer({ endpoints: broker.endpoints, group, subscriptions: { [topic]: '*' }, handler: async (m) => void got.add(m.body.toString()) });
    await live.start();
    cleanup.push(() => live.shutdown());
    await waitFor(async () => (await admin.groupStatus(group)).members.length === 2, 'both members joined');

    const producer = new Producer({ endpoints: broker.endpoints });
    cleanup.push(() => producer.shutdown());
    const bodies = Array.from({ length: 40 }, (_, i) => `hb-${i}`);
    await Promise.all(bodies.map((body) => producer.send({ topic, body })));

    await waitFor(async () => {
      const s = await admin.groupStatus(group);
      return s.members.length === 1 && s.members[0]!.clientId !== 'hung-member' && s.members[0]!.queues.filter((q) => q.startsWith(topic)).length === 4;
    }, 'the silent member to be evicted and the live one to own every queue');
    await waitFor(() => bodies.every((b) => got.has(b)), 'every message at the live member');
    expect(broker.stderr()).toMatch(/client hung-member .* silent for 800 ms; disconnecting/);
  });
});
