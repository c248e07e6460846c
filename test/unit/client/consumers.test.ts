import { afterEach, describe, expect, it } from 'vitest';
import { IllegalStateError, InvalidArgumentError, NotAMemberError } from '../../../src/common/errors.js';
import type { ReceivedMessage } from '../../../src/common/message.js';
import { byQueue } from '../../../src/client/group-member.js';
import { PushConsumer } from '../../../src/client/push-consumer.js';
import { SimpleConsumer } from '../../../src/client/simple-consumer.js';
import { Command } from '../../../src/protocol/commands.js';
import type { AckRequest, NackRequest, PullRequest, WireDeliveredMessage } from '../../../src/protocol/commands.js';
import type { Frame } from '../../../src/protocol/frame.js';
import { packBodies } from '../../../src/protocol/message-codec.js';
import type { Peer } from '../../../src/protocol/peer.js';
import { FakeBroker } from './fake-broker.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

/**
 * A fake group: a backlog of messages, pulls parked while it is empty, LEAVE answers parked pulls.
 * It answers PULL as a broker older than `raw` did (each message decoded), which clients still read.
 */
class FakeGroup {
  backlog: { wire: WireDeliveredMessage; body: Buffer }[] = [];
  parked: { max: number; resolve: (r: unknown) => void }[] = [];
  members = new Set<Peer>();
  acks: AckRequest[] = [];
  nacks: NackRequest[] = [];
  private offset = 0;

  add(body: string, tag?: string): void {
    const wire: WireDeliveredMessage = { id: `id-${this.offset}`, t: 'orders', q: 0, o: this.offset++, b: 1, st: 2, r: 0, n: Buffer.byteLength(body) };
    if (tag) wire.g = tag;
    this.backlog.push({ wire, body: Buffer.from(body) });
    const waiting = this.parked.shift();
    if (waiting) waiting.resolve(this.take(waiting.max));
  }

  take(max: number): unknown {
    const batch = this.backlog.splice(0, max);
    return [{ messages: batch.map((b) => b.wire) }, batch.length ? packBodies(batch.map((b) => b.body)) : undefined];
  }

  handle = (frame: Frame, peer: Peer): unknown => {
    const d = frame.header.d as Record<string, unknown>;
    switch (frame.header.c) {
      case Command.JOIN_GROUP:
        this.members.add(peer);
        peer.on('close', () => this.members.delete(peer));
        return { memberId: `m${this.members.size}` };
      case Command.PULL: {
        if (!this.members.has(peer)) throw new NotAMemberError('not joined');
        const { max } = d as unknown as PullRequest;
        if (this.backlog.length > 0) return this.take(max);
        return new Promise((resolve) => this.parked.push({ max, resolve }));
      }
      case Command.ACK:
        this.acks.push(d as unknown as AckRequest);
        return {};
      case Command.NACK:
        this.nacks.push(d as unknown as NackRequest);
        return {};
      case Command.LEAVE_GROUP:
        this.members.delete(peer);
        for (const p of this.parked.splice(0)) p.resolve([{ messages: [] }]);
        return {};
      default:
        return {};
    }
  };
}

async function until(check: () => boolean, ms = 2_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('PushConsumer', () => {
  it('delivers, acks in batches, nacks handler failures, and shuts down cleanly', async () => {
    const group = new FakeGroup();
    const broker = await new FakeBroker(group.handle).listen();
    cleanup.push(() => broker.stop());
    const seen: ReceivedMessage[] = [];
    const errors: unknown[] = [];
    const consumer = new PushConsumer({
      endpoints: broker.endpoint,
      group: 'g',
      subscriptions: { orders: 'a || b' },
      handler: async (m) => {
        seen.push(m);
        if (m.body.toString() === 'bad') throw new Error('cannot handle bad');
      },
    });
    consumer.on('handlerError', (err) => errors.push(err));
    cleanup.push(() => consumer.shutdown());
    await consumer.start();
    expect(consumer.state).toBe('running');
    expect(broker.requests.find((r) => r.code === Command.JOIN_GROUP)?.payload).toEqual({ group: 'g', subscriptions: { orders: 'a || b' } });

    await until(() => group.parked.length === 1); // long poll outstanding
    group.add('one');
    group.add('two');
    group.add('bad');
    await until(() => seen.length === 3 && group.nacks.length === 1 && group.acks.flatMap((a) => a.items).length === 2);
    expect(seen.map((m) => m.body.toString())).toEqual(['one', 'two', 'bad']);
    expect(group.nacks[0]).toEqual({ group: 'g', items: [['orders', 0, 2]], reason: 'cannot handle bad' });
    expect(errors).toHaveLength(1);
    expect(broker.count(Command.ACK)).toBeLessThanOrEqual(2);

    await consumer.shutdown();
    expect(consumer.state).toBe('closed');
    expect(broker.count(Command.LEAVE_GROUP)).toBe(1);
  });

  it('shutdown waits for the handlers in flight, then acks what they finished', async () => {
    const group = new FakeGroup();
    group.add('slow');
    const broker = await new FakeBroker(group.handle).listen();
    cleanup.push(() => broker.stop());
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started = false;
    const consumer = new PushConsumer({
      endpoints: broker.endpoint,
      group: 'g',
      subscriptions: { orders: '*' },
      handler: async () => {
        started = true;
        await gate;
      },
    });
    cleanup.push(() => consumer.shutdown());
    await consumer.start();
    await until(() => started);
    let closed = false;
    const stopping = consumer.shutdown().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closed).toBe(false);
    expect(consumer.state).toBe('stopping');
    release();
    await stopping;
    expect(group.acks.flatMap((a) => a.items)).toHaveLength(1);
  });

  it('keeps at most `concurrency` handlers in flight', async () => {
    const group = new FakeGroup();
    for (let i = 0; i < 10; i++) group.add(`m${i}`);
    const broker = await new FakeBroker(group.handle).listen();
    cleanup.push(() => broker.stop());
    let running = 0;
    let peak = 0;
    let done = 0;
    const consumer = new PushConsumer({
      endpoints: broker.endpoint,
      group: 'g',
      subscriptions: { orders: '*' },
      concurrency: 3,
      handler: async () => {
        peak = Math.max(peak, ++running);
        await new Promise((r) => setTimeout(r, 10));
        running--;
        done++;
      },
    });
    cleanup.push(() => consumer.shutdown());
    await consumer.start();
    await until(() => done === 10);
    expect(peak).toBe(3);
    const maxes = broker.requests.filter((r) => r.code === Command.PULL).map((r) => (r.payload as PullRequest).max);
    expect(Math.max(...maxes)).toBe(3);
  });

  it('re-joins after the broker restarts and keeps consuming', async () => {
    const group = new FakeGroup();
    const broker = await new FakeBroker(group.handle).listen();
    const port = broker.port;
    const seen: string[] = [];
    const consumer = new PushConsumer({
      endpoints: broker.endpoint,
      group: 'g',
      subscriptions: { orders: '*' },
      reconnectBackoff: { initialMs: 10, maxMs: 50 },
      handler: (m) => void seen.push(m.body.toString()),
    });
    cleanup.push(() => consumer.shutdown());
    await consumer.start();
    await broker.stop();
    const group2 = new FakeGroup();
    const restarted = await new FakeBroker(group2.handle).listen(port);
    cleanup.push(() => restarted.stop());
    await until(() => restarted.count(Command.JOIN_GROUP) === 1 && group2.parked.length === 1);
    group2.add('after restart');
    await until(() => seen.includes('after restart'));
  });

  it('validates its options', () => {
    const base = { endpoints: '127.0.0.1:1', group: 'g', subscriptions: { orders: '*' }, handler: () => undefined };
    expect(() => new PushConsumer({ ...base, group: '' })).toThrow(InvalidArgumentError);
    expect(() => new PushConsumer({ ...base, subscriptions: {} })).toThrow(/at least one topic/);
    expect(() => new PushConsumer({ ...base, concurrency: 0 })).toThrow(/concurrency/);
    expect(() => new PushConsumer({ ...base, startFrom: 'middle' as never })).toThrow(/startFrom/);
    expect(() => new PushConsumer({ ...base, handler: undefined as never })).toThrow(/handler/);
  });
});

describe('SimpleConsumer', () => {
  it('receives with long polling, acks one or many, nacks with a reason', async () => {
    const group = new FakeGroup();
    const broker = await new FakeBroker(group.handle).listen();
    cleanup.push(() => broker.stop());
    const consumer = new SimpleConsumer({ endpoints: broker.endpoint, group: 'g', subscriptions: { orders: '*' }, invisibleMs: 5_000, startFrom: 'latest' });
    cleanup.push(() => consumer.shutdown());
    await expect(consumer.receive(1, 0)).rejects.toBeInstanceOf(IllegalStateError);
    await consumer.start();
    expect(broker.requests.find((r) => r.code === Command.JOIN_GROUP)?.payload).toMatchObject({ startFrom: 'latest' });

    setTimeout(() => group.add('late', 'x'), 50);
    const [first] = await consumer.receive(10, 5_000);
    expect(first).toMatchObject({ topic: 'orders', queueOffset: 0, tag: 'x', keys: [], properties: {} });
    expect(first!.body.toString()).toBe('late');
    expect(broker.requests.find((r) => r.code === Command.PULL)?.payload).toEqual({ group: 'g', max: 10, waitMs: 5_000, invisibleMs: 5_000, raw: true });

    group.add('a');
    group.add('b');
    const two = await consumer.receive(10, 0);
    await consumer.ack(first!);
    await consumer.ack(two);
    await consumer.nack(two[0]!, 'try later');
    expect(group.acks.map((a) => a.items)).toEqual([[['orders', 0, 0]], [['orders', 0, 1], ['orders', 0, 2]]]);
    expect(group.nacks).toEqual([{ group: 'g', items: [['orders', 0, 1]], reason: 'try later' }]);
    await expect(consumer.ack({} as never)).rejects.toBeInstanceOf(InvalidArgumentError);

    await consumer.shutdown();
    await expect(consumer.receive(1, 0)).rejects.toBeInstanceOf(IllegalStateError);
  });

  it('acks by queue runs when the broker lists ack-by-queue, per message otherwise', async () => {
    const acks = async (features: string[] | undefined): Promise<unknown> => {
      const group = new FakeGroup();
      const broker = new FakeBroker(group.handle);
      broker.features = features;
      await broker.listen();
      cleanup.push(() => broker.stop());
      const consumer = new SimpleConsumer({ endpoints: broker.endpoint, group: 'g', subscriptions: { orders: '*' } });
      cleanup.push(() => consumer.shutdown());
      await consumer.start();
      const at = (queueId: number, queueOffset: number) => ({ topic: 'orders', queueId, queueOffset });
      await consumer.ack([at(0, 4), at(0, 5), at(1, 4)]);
      const { items, byQueue } = group.acks[0]!;
      return { items, byQueue };
    };
    expect(await acks(['raw-pull', 'ack-by-queue'])).toEqual({ items: undefined, byQueue: [['orders', 0, [4, 5]], ['orders', 1, [4]]] });
    expect(await acks(undefined)).toEqual({ items: [['orders', 0, 4], ['orders', 0, 5], ['orders', 1, 4]], byQueue: undefined });
  });

  it('re-joins once when the broker says NOT_A_MEMBER', async () => {
    const group = new FakeGroup();
    const broker = await new FakeBroker(group.handle).listen();
    cleanup.push(() => broker.stop());
    const consumer = new SimpleConsumer({ endpoints: broker.endpoint, group: 'g', subscriptions: { orders: '*' } });
    cleanup.push(() => consumer.shutdown());
    await consumer.start();
    group.members.clear(); // e.g. the broker expired us after missed heartbeats
    group.add('x');
    const got = await consumer.receive(1, 0);
    expect(got).toHaveLength(1);
    expect(broker.count(Command.JOIN_GROUP)).toBe(2);
  });
});

describe('byQueue (the compact ACK)', () => {
  it('joins consecutive refs of one queue and keeps every ref, in order', () => {
    const refs: [string, number, number][] = [
      ['a', 0, 5],
      ['a', 0, 6],
      ['a', 1, 5],
      ['b', 1, 2],
      ['a', 0, 7],
      ['a', 0, 3],
    ];
    expect(byQueue(refs)).toEqual([
      ['a', 0, [5, 6]],
      ['a', 1, [5]],
      ['b', 1, [2]],
      ['a', 0, [7, 3]],
    ]);
    expect(byQueue([])).toEqual([]);
  });
});
