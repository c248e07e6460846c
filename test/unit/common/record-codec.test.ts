import { describe, expect, it } from 'vitest';
import { CorruptDataError, InvalidArgumentError } from '../../../src/common/errors.js';
import { decodeRecord, encodeRecord, encodeUnstampedRecords, recordReconsumeTimes, recordTag, stampRecord, validateRecord, validateRecordInput, MIN_RECORD_SIZE } from '../../../src/common/record-codec.js';
import { RecordType, type RecordInput } from '../../../src/common/record.js';

function input(overrides: Partial<RecordInput> = {}): RecordInput {
  return {
    type: RecordType.NORMAL,
    topic: 'orders',
    queueId: 3,
    msgId: 'AC1100020001000000000001',
    keys: [],
    properties: {},
    body: Buffer.from('hello'),
    bornTimestamp: 1_700_000_000_123,
    reconsumeTimes: 0,
    ...overrides,
  };
}

describe('record codec', () => {
  it('round-trips a record with tag, keys and properties', () => {
    const src = input({ tag: 'TagA', keys: ['order-1', 'user-ü'], properties: { a: '1', 'x-ünï': 'çödé 🚀' }, reconsumeTimes: 7 });
    const buf = encodeRecord(src, 123_456_789_012, 1_700_000_000_999);
    expect(buf.readUInt32LE(0)).toBe(buf.length);
    const out = decodeRecord(buf, 42);
    expect(out).toEqual({
      physicalOffset: 42,
      size: buf.length,
      type: RecordType.NORMAL,
      topic: 'orders',
      queueId: 3,
      queueOffset: 123_456_789_012,
      msgId: src.msgId,
      tag: 'TagA',
      keys: ['order-1', 'user-ü'],
      properties: { a: '1', 'x-ünï': 'çödé 🚀' },
      body: Buffer.from('hello'),
      bornTimestamp: 1_700_000_000_123,
      storeTimestamp: 1_700_000_000_999,
      reconsumeTimes: 7,
    });
  });

  it('a producer\'s unstamped records, once stamped, are byte for byte what the store would encode', () => {
    const inputs = [
      input({ queueId: 0, tag: 'TagA', keys: ['order-1'], properties: { 'x-ünï': 'çödé 🚀' } }),
      input({ queueId: 0, msgId: 'AC1100020001000000000002', body: Buffer.alloc(0) }),
      input({ queueId: 0, msgId: 'AC1100020001000000000003', body: Buffer.alloc(3000, 7), keys: ['k'] }),
    ];
    const sent = encodeUnstampedRecords(inputs);
    let at = 0;
    inputs.forEach((src, i) => {
      const size = sent.readUInt32LE(at);
      const record = sent.subarray(at, at + size);
      expect(validateRecord(sent, at, size)).toBe('crc mismatch'); // the sender leaves the crc to the broker
      // Whatever a sender wrote into the fixed header is overwritten.
      record[13] = RecordType.PREPARED;
      record.writeUInt32LE(9, 44);
      stampRecord(record, RecordType.NORMAL, 5, 1000 + i, 1_700_000_000_999);
      expect(record).toEqual(encodeRecord({ ...src, queueId: 5 }, 1000 + i, 1_700_000_000_999));
      expect(decodeRecord(record, 0).reconsumeTimes).toBe(0);
      at += size;
    });
    expect(at).toBe(sent.length);
  });

  it('round-trips a bare record: no tag, no meta, empty body, queue offset -1', () => {
    const buf = encodeRecord(input({ type: RecordType.PREPARED, body: new Uint8Array(0), msgId: '' }), -1, 5);
    expect(buf.length).toBe(MIN_RECORD_SIZE + 'orders'.length);
    const out = decodeRecord(buf, 0);
    expect(out.tag).toBeUndefined();
    expect('tag' in out).toBe(false);
    expect(out.queueOffset).toBe(-1);
    expect(out.type).toBe(RecordType.PREPARED);
    expect(out.keys).toEqual([]);
    expect(out.properties).toEqual({});
    expect(out.body.length).toBe(0);
    expect(out.msgId).toBe('');
  });

  it('reads the tag and reconsume times of a whole record without decoding it, as decodeRecord does', () => {
    for (const src of [
      input({ topic: 'bestellungen-ü', tag: 'bezahlt-✓', reconsumeTimes: 16, keys: ['k'], properties: { p: 'v' } }),
      input({ tag: undefined, reconsumeTimes: 0, msgId: 'x' }),
      input({ tag: 'T', msgId: 'M'.repeat(255), body: Buffer.alloc(70_000) }),
    ]) {
      const buf = encodeRecord(src, 5, 6);
      const decoded = decodeRecord(buf, 0);
      expect([recordTag(buf), recordReconsumeTimes(buf)]).toEqual([decoded.tag, decoded.reconsumeTimes]);
      expect([recordTag(buf), recordReconsumeTimes(buf)]).toEqual([src.tag, src.reconsumeTimes]);
    }
  });

  it('uses the documented byte layout', () => {
    const buf = encodeRecord(input({ tag: 'T' }), 2 ** 32 + 5, 2 ** 40);
    expect(buf.readUInt32LE(4)).toBe(0x484d5131);
    expect(buf[12]).toBe(1);
    expect(buf[13]).toBe(0);
    expect(buf.readUInt32LE(16)).toBe(3);
    expect(buf.readUInt32LE(20)).toBe(5);
    expect(buf.readUInt32LE(24)).toBe(1);
    expect(buf.readUInt32LE(36)).toBe(0);
    expect(buf.readUInt32LE(40)).toBe(256);
    expect(buf.readUInt16LE(48)).toBe(6);
    expect(buf.toString('utf8', 50, 56)).toBe('orders');
  });

  it('decodes at an offset inside a larger buffer', () => {
    const a = encodeRecord(input({ body: Buffer.from('first') }), 0, 1);
    const b = encodeRecord(input({ body: Buffer.from('second'), tag: 'x' }), 1, 2);
    const both = Buffer.concat([a, b]);
    const out = decodeRecord(both, 1000 + a.length, a.length, true);
    expect(out.body.toString()).toBe('second');
    expect(out.queueOffset).toBe(1);
    both.fill(0);
    expect(out.body.toString()).toBe('second');
  });

  it('detects any flipped byte after the crc field', () => {
    const buf = encodeRecord(input({ tag: 'TagA', keys: ['k'] }), 9, 10);
    expect(validateRecord(buf, 0, buf.length)).toBeUndefined();
    for (const at of [12, 20, 40, 50, buf.length - 1]) {
      const copy = Buffer.from(buf);
      copy[at] ^= 0x01;
      expect(validateRecord(copy, 0, copy.length)).toBeDefined();
      expect(() => decodeRecord(copy, 0)).toThrow(CorruptDataError);
    }
    const badMagic = Buffer.from(buf);
    badMagic[5] ^= 0xff;
    expect(validateRecord(badMagic, 0, badMagic.length)).toBe('bad magic');
  });

  it('rejects inputs the format cannot hold', () => {
    expect(() => validateRecordInput(input({ msgId: 'ünicode' }))).toThrow(InvalidArgumentError);
    expect(() => validateRecordInput(input({ topic: '' }))).toThrow(InvalidArgumentError);
    expect(() => validateRecordInput(input({ queueId: -1 }))).toThrow(InvalidArgumentError);
    expect(() => validateRecordInput(input({ type: 256 }))).toThrow(InvalidArgumentError);
    expect(() => validateRecordInput(input())).not.toThrow();
  });
});
