import { afterEach, describe, expect, it } from 'vitest';
import { Producer } from '../../../src/client/producer.js';
import { TopicNotFoundError } from '../../../src/common/errors.js';
import { Command } from '../../../src/protocol/commands.js';
import type { SendRequest } from '../../../src/protocol/commands.js';
import { FakeBroker } from './fake-broker.js';

/** A fake SEND: refuses any request that contains a message for topic "missing". */
function sendHandler(broker: FakeBroker) {
  let offset = 0;
  broker.handle = (frame) => {
    if (frame.header.c !== Command.SEND) return {};
    const { messages } = frame.header.d as SendRequest;
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
