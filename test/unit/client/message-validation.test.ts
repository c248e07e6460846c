import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, MessageTooLargeError } from '../../../src/common/errors.js';
import { encodeMessage, toReceivedMessage, validateMessage } from '../../../src/client/message-convert.js';
import { chunkByFrameSize } from '../../../src/client/producer.js';

const ID = '0'.repeat(32);

describe('validateMessage', () => {
  it('accepts a minimal and a full message', () => {
    expect(() => validateMessage({ topic: 'orders', body: 'x' })).not.toThrow();
    expect(() =>
      validateMessage({ topic: 'orders', body: new Uint8Array(3), tag: 'a', keys: ['k1', 'k2'], properties: { p: 'v' }, shardingKey: 's' }),
    ).not.toThrow();
    expect(() => validateMessage({ topic: 'orders', body: Buffer.from('x'), keys: 'k' })).not.toThrow();
  });

  it.each([
    [null, /must be an object/],
    ['orders', /must be an object/],
    [{ body: 'x' }, /topic must be a non-empty string/],
    [{ topic: '', body: 'x' }, /topic must be a non-empty string/],
    [{ topic: 'has space', body: 'x' }, /invalid topic name/],
    [{ topic: 'orders' }, /body must be a string or a Uint8Array/],
    [{ topic: 'orders', body: 42 }, /body must be a string or a Uint8Array/],
    [{ topic: 'orders', body: { a: 1 } }, /body must be a string or a Uint8Array/],
    [{ topic: 'orders', body: 'x', tag: 5 }, /tag must be a string/],
    [{ topic: 'orders', body: 'x', tag: 'a||b' }, /must not contain "\|\|"/],
    [{ topic: 'orders', body: 'x', keys: [1] }, /keys must be a string or an array of strings/],
    [{ topic: 'orders', body: 'x', properties: { a: 1 } }, /properties.a must be a string/],
    [{ topic: 'orders', body: 'x', properties: [] }, /properties must be an object/],
    [{ topic: 'orders', body: 'x', shardingKey: 7 }, /shardingKey must be a string/],
  ])('rejects %j', (message, error) => {
    expect(() => validateMessage(message)).toThrow(InvalidArgumentError);
    expect(() => validateMessage(message)).toThrow(error);
  });

  it('names the message in a batch', () => {
    expect(() => validateMessage({ topic: 'orders' }, 'messages[3]')).toThrow(/messages\[3\]\.body/);
  });
});

describe('encodeMessage', () => {
  it('encodes to the short wire keys, UTF-8 bodies, normalised keys', () => {
    const { wire, body } = encodeMessage(
      { topic: 'orders', body: 'héllo', tag: 'created', keys: ['k1', ''], properties: { a: 'b' }, shardingKey: 'u1' },
      ID,
      1024,
      1234,
    );
    expect(body.toString('utf8')).toBe('héllo');
    expect(wire).toEqual({ t: 'orders', id: ID, n: 6, b: 1234, g: 'created', k: ['k1'], p: { a: 'b' }, s: 'u1' });
  });

  it('omits empty optional fields', () => {
    const { wire } = encodeMessage({ topic: 'orders', body: new Uint8Array([1, 2]), tag: '', keys: [], properties: {} }, ID, 1024, 1);
    expect(wire).toEqual({ t: 'orders', id: ID, n: 2, b: 1 });
  });

  it('refuses a body over the limit with MessageTooLargeError, at the limit is fine', () => {
    expect(() => encodeMessage({ topic: 'orders', body: Buffer.alloc(11) }, ID, 10)).toThrow(MessageTooLargeError);
    expect(() => encodeMessage({ topic: 'orders', body: 'é'.repeat(6) }, ID, 11)).toThrow(/12 bytes exceeds the limit of 11/);
    expect(() => encodeMessage({ topic: 'orders', body: Buffer.alloc(10) }, ID, 10)).not.toThrow();
  });
});

describe('toReceivedMessage', () => {
  it('fills defaults for absent optional fields', () => {
    const m = toReceivedMessage({ id: ID, t: 'orders', q: 1, o: 7, b: 1, st: 2, r: 0, n: 1 }, Buffer.from('x'));
    expect(m).toEqual({ msgId: ID, topic: 'orders', queueId: 1, queueOffset: 7, keys: [], properties: {}, body: Buffer.from('x'), bornTimestamp: 1, storeTimestamp: 2, reconsumeTimes: 0 });
    expect('tag' in m).toBe(false);
  });
});

describe('chunkByFrameSize', () => {
  it('keeps a batch in one frame when it fits and splits it when not', () => {
    const encoded = Array.from({ length: 10 }, () => encodeMessage({ topic: 't', body: Buffer.alloc(1000) }, ID, 2000));
    expect(chunkByFrameSize(encoded, 1_000_000)).toHaveLength(1);
    const chunks = chunkByFrameSize(encoded, 3_500);
    expect(chunks.map((c) => c.length)).toEqual([3, 3, 3, 1]);
    expect(chunkByFrameSize(encoded, 10)).toHaveLength(10); // an oversize single message still goes alone
  });
});
