import { afterEach, describe, expect, it } from 'vitest';
import { Producer } from '../../../src/client/producer.js';
import { TopicNotFoundError } from '../../../src/common/errors.js';
import { Command } from '../../../src/protocol/commands.js';
import type { SendRequest } from '../../../src/protocol/commands.js';
import { decodeRecord } from '../../../src/common/record-codec.js';
import { FakeBroker } from './fake-broker.js';

/** A fake SEND: refuses any request that contains a message for topic "missing". */
function sendHandler(broker: FakeBroker) {
  let offset = 0;
  broker.handle = (frame) => {
    if (frame.header.c !== Command.SEND) return {};
    const messages = (frame.header.d as SendRequest).messages!;
    if (messages.some((m) => m.t === 'missing')) throw new TopicNotFoundError('topic missing does not exist');
    return { results: messages.map((m) => ({ msgId: m.id, topic: m.t, queueId: 0, queueOffset: offset++ })) };
  };
}

describe('Producer.send coalescing', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  async function setup(): Promise<{ broker: FakeBroker; producer: Producer }> {
    const broker = await new FakeBroker().listen();
    sendHandler(broker);
    const producer = new Producer({ endpoints: broker.endpoint });
    cleanups.push(() => producer.shutdown(), () => broker.stop());
    await producer.start();
    return { broker, producer };
  }

  it('sends concurrent send() calls as one SEND request, each with its own result', async () => {
    const { broker, producer } = await setup();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => producer.send({ topic: 'orders', body: `m${i}` })));
    expect(broker.count(Command.SEND)).toBe(1);
    expect(new Set(results.map((r) => r.msgId)).size).toBe(50);
    expect(results.map((r) => r.queueOffset)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const sent = broker.requests.find((r) => r.code === Command.SEND)!;
    expect(sent.body.toString()).toBe(Array.from({ length: 50 }, (_, i) => `m${i}`).join(''));
  });

  it('a non-retriable failure of the shared request fails only the message at fault', async () => {
    const { broker, producer } = await setup();
    const outcomes = await Promise.allSettled([
      producer.send({ topic: 'orders', body: 'a' }),
      producer.send({ topic: 'missing', body: 'b' }),
      producer.send({ topic: 'orders', body: 'c' }),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(TopicNotFoundError);
    expect(broker.count(Command.SEND)).toBe(4); // the shared one, then each alone
  });

  it('sends issued in different ticks are not held back', async () => {
    const { broker, producer } = await setup();
    await producer.send({ topic: 'orders', body: 'x' });
    await producer.send({ topic: 'orders', body: 'y' });
    expect(broker.count(Command.SEND)).toBe(2);
  });
});

describe('Producer SEND forms', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  it('sends records to a broker that lists record-send, and messages with a sharding key or a delivery time as entries', async () => {
    const broker = await new FakeBroker().listen();
    broker.features = ['record-send'];
    let offset = 0;
    broker.handle = (frame) => {
      if (frame.header.c !== Command.SEND) return {};
      const d = frame.header.d as SendRequest;
      const n = d.records ?? d.messages!.length;
      return { q: Array.from({ length: n }, () => 0), o: Array.from({ length: n }, () => offset++) };
    };
    const producer = new Producer({ endpoints: broker.endpoint });
    cleanups.push(() => producer.shutdown(), () => broker.stop());
    await producer.start();

    const plain = await Promise.all([
      producer.send({ topic: 'orders', body: 'a', tag: 'TagA', keys: ['k1'], properties: { p: 'v' } }),
      producer.send({ topic: 'orders', body: 'b' }),
    ]);
    const first = broker.requests.filter((r) => r.code === Command.SEND)[0]!;
    expect(first.payload).toEqual({ records: 2, cr: true });
    const a = decodeRecord(first.body, 0, 0, false, false);
    const b = decodeRecord(first.body, 0, a.size, false, false);
    expect(a.size + b.size).toBe(first.body.length);
    expect([a.msgId, b.msgId]).toEqual(plain.map((r) => r.msgId));
    expect(a).toMatchObject({ topic: 'orders', tag: 'TagA', keys: ['k1'], properties: { p: 'v' }, body: Buffer.from('a') });
    expect(b).toMatchObject({ topic: 'orders', keys: [], properties: {}, body: Buffer.from('b') });
    expect(b.tag).toBeUndefined();

    await producer.send({ topic: 'orders', body: 'c', shardingKey: 'user-1' });
    await producer.send({ topic: 'orders', body: 'd', delayMs: 5_000 });
    const later = broker.requests.filter((r) => r.code === Command.SEND).slice(1).map((r) => r.payload as SendRequest);
    expect(later.map((d) => d.records)).toEqual([undefined, undefined]);
    expect(later.map((d) => d.messages![0]!.s ?? d.messages![0]!.dm)).toEqual(['user-1', 5_000]);
  });

  it('refuses a tag the record format cannot hold, by name, and sends the others', async () => {
    const broker = await new FakeBroker().listen();
    broker.features = ['record-send'];
    broker.handle = (frame) => {
      const d = frame.header.d as SendRequest;
      const n = d.records ?? d.messages?.length ?? 0;
      return { q: Array.from({ length: n }, () => 0), o: Array.from({ length: n }, (_, i) => i) };
    };
    const producer = new Producer({ endpoints: broker.endpoint });
    cleanups.push(() => producer.shutdown(), () => broker.stop());
    await producer.start();
    const [bad, good] = await Promise.allSettled([producer.send({ topic: 'orders', body: 'x', tag: 'é'.repeat(40_000) }), producer.send({ topic: 'orders', body: 'y' })]);
    expect(bad.status).toBe('rejected');
    expect((bad as PromiseRejectedResult).reason).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('tag') });
    expect(good.status).toBe('fulfilled');
  });
});
