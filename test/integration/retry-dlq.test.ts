import { afterEach, describe, expect, it } from 'vitest';
import { Admin, Producer, PushConsumer, SimpleConsumer } from '../../src/index.js';
import type { ReceivedMessage } from '../../src/index.js';
import { removeDir, runCli, startBrokerProcess, uniqueName, waitFor } from '../helpers/broker-process.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

const DELAYS = [200, 400, 800];

async function broker() {
  const b = await startBrokerProcess({ args: ['--retry-delays', DELAYS.map((d) => `${d}ms`).join(',')] });
  cleanup.push(async () => {
    await b.stop();
    await removeDir(b.dataDir);
  });
  return b;
}

describe('retries and dead letters', () => {
  it('retries a failing message with growing gaps, dead-letters it with its reason, and a resend reaches the fixed handler', async () => {
    const b = await broker();
    const topic = uniqueName('orders');
    const group = uniqueName('points');
    const producer = new Producer({ endpoints: b.endpoints });
    cleanup.push(() => producer.shutdown());
    const admin = new Admin({ endpoints: b.endpoints });
    cleanup.push(() => admin.shutdown());
    await admin.createTopic(topic, { queues: 2 });

    const attempts: { at: number; m: ReceivedMessage }[] = [];
    const good: string[] = [];
    const failing = new PushConsumer({
      endpoints: b.endpoints,
      group,
      subscriptions: { [topic]: '*' },
      maxReconsumeTimes: 3,
      handler: (m) => {
        if (m.body.toString() !== 'poison') return void good.push(m.body.toString());
        attempts.push({ at: Date.now(), m });
        throw new Error('downstream is down');
      },
    });
    await failing.start();
    cleanup.push(() => failing.shutdown());

    const sent = await producer.send({ topic, body: 'poison', tag: 'created', keys: 'order-7', properties: { region: 'eu' } });
    // One failing message must not hold up the others.
    await Promise.all(Array.from({ length: 20 }, (_, i) => producer.send({ topic, body: `ok-${i}` })));
    await waitFor(() => good.length === 20, 'the healthy messages', 10_000);
    expect(attempts.length).toBeLessThan(4);

    await waitFor(() => attempts.length === 4, 'four deliveries of the failing message', 15_000);
    expect(attempts.map((a) => a.m.reconsumeTimes)).toEqual([0, 1, 2, 3]);
    for (const { m } of attempts) {
      expect(m).toMatchObject({ msgId: sent.msgId, topic, queueId: sent.queueId, queueOffset: sent.queueOffset, tag: 'created', keys: ['order-7'] });
      expect(m.properties).toEqual({ region: 'eu' });
    }
    for (let i = 1; i < attempts.length; i++) {
      // Load can only make a gap longer: assert the lower bound, loosely.
      expect(attempts[i]!.at - attempts[i - 1]!.at).toBeGreaterThanOrEqual(DELAYS[i - 1]! - 50);
    }

    const listed = async () => {
      const r = await runCli(['dlq', 'list', '--group', group, '--json', '--server', b.endpoints]);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Record<string, unknown>[];
    };
    await waitFor(async () => (await listed()).length === 1, 'the message in the DLQ');
    const [dead] = await listed();
    expect(dead).toMatchObject({
      msgId: sent.msgId,
      topic,
      tag: 'created',
      keys: ['order-7'],
      properties: { region: 'eu' },
      reason: 'downstream is down',
      reconsumeTimes: 3,
      body: 'poison',
    });
    await new Promise((r) => setTimeout(r, DELAYS[2]! + 300));
    expect(attempts).toHaveLength(4); // no fifth delivery: it is dead

    await waitFor(async () => (await admin.groupStatus(group)).totalLag === 0, 'nothing pending after dead-lettering');
    expect((await admin.groupStatus(group)).deadLetters).toBe(1);

    await failing.shutdown();
    const fixed: ReceivedMessage[] = [];
    const fixedConsumer = new PushConsumer({
      endpoints: b.endpoints,
      group,
      subscriptions: { [topic]: '*' },
      handler: (m) => void fixed.push(m),
    });
    await fixedConsumer.start();
    cleanup.push(() => fixedConsumer.shutdown());

    const missing = await runCli(['dlq', 'resend', '--group', group, '--id', 'no-such-id', '--server', b.endpoints]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/MESSAGE_NOT_FOUND/);

    const resend = await runCli(['dlq', 'resend', '--group', group, '--id', sent.msgId, '--server', b.endpoints]);
    expect(resend.code, resend.stderr).toBe(0);
    expect(resend.stdout).toContain('resent 1 message(s)');
    await waitFor(() => fixed.length === 1, 'the resent message at the fixed handler');
    expect(fixed[0]).toMatchObject({ msgId: sent.msgId, topic, reconsumeTimes: 0, body: Buffer.from('poison') });
    expect(await listed()).toEqual([]);
    expect((await admin.groupStatus(group)).deadLetters).toBe(0);
    // Resent once only.
    const again = await runCli(['dlq', 'resend', '--group', group, '--all', '--server', b.endpoints]);
    expect(again.stdout).toContain('resent 0 message(s)');
    await waitFor(async () => (await admin.groupStatus(group)).totalLag === 0, 'the resent message acked');
    expect(fixed).toHaveLength(1);
  });

  it('retries a SimpleConsumer message whose lease expires, then purges the DLQ', async () => {
    const b = await broker();
    const topic = uniqueName('lease');
    const group = uniqueName('g');
    const producer = new Producer({ endpoints: b.endpoints });
    cleanup.push(() => producer.shutdown());
    const admin = new Admin({ endpoints: b.endpoints });
    cleanup.push(() => admin.shutdown());
    await admin.createTopic(topic, { queues: 1 });
    const consumer = new SimpleConsumer({ endpoints: b.endpoints, group, subscriptions: { [topic]: '*' }, invisibleMs: 300, maxReconsumeTimes: 1 });
    await consumer.start();
    cleanup.push(() => consumer.shutdown());
    const sent = await producer.send({ topic, body: 'forgotten' });

    const first = await consumer.receive(1, 5_000);
    expect(first.map((m) => [m.msgId, m.reconsumeTimes])).toEqual([[sent.msgId, 0]]);
    // Not acked: after the lease and the first retry delay it comes back, counted.
    let second: ReceivedMessage[] = [];
    await waitFor(async () => (second = await consumer.receive(1, 2_000)).length > 0, 'the redelivery');
    expect(second.map((m) => [m.msgId, m.topic, m.reconsumeTimes])).toEqual([[sent.msgId, topic, 1]]);
    // Its lease expires too: maxReconsumeTimes 1 means the DLQ now.
    await waitFor(async () => (await admin.dlqList(group)).length === 1, 'the message in the DLQ');
    expect((await admin.dlqList(group))[0]).toMatchObject({ msgId: sent.msgId, reason: 'lease expired before an ack' });

    const purge = await runCli(['dlq', 'purge', '--group', group, '--server', b.endpoints]);
    expect(purge.stdout).toContain('purged 1 message(s)');
    expect(await admin.dlqList(group)).toEqual([]);
  });
});
