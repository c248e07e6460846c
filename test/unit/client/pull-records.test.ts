import { describe, expect, it } from 'vitest';
import { CorruptDataError, MalformedFrameError } from '../../../src/common/errors.js';
import { RecordType, type RecordInput } from '../../../src/common/record.js';
import { rec } from '../storage/helpers.js';
import { encodeRecord } from '../../../src/common/record-codec.js';
import { SystemProperty } from '../../../src/common/system-properties.js';
import { receivedFromRecords } from '../../../src/client/message-convert.js';

/** An order event as a producer would send it; `rec` fills in the rest. */
const input = (overrides: Partial<RecordInput> = {}): RecordInput =>
  rec({
    queueId: 2,
    msgId: 'A'.repeat(32),
    keys: ['order-1'],
    properties: { region: 'eu' },
    tag: 'paid',
    body: Buffer.from('{"order":1}'),
    bornTimestamp: 1_700_000_000_000,
    ...overrides,
  });

describe('receivedFromRecords (PULL answered with records as stored)', () => {
  it('shows each record as the message sent, at the queue offset the reply gives', () => {
    // A released transactional half says -1 itself: the reply's offset is the truth.
    const half = encodeRecord(input({ type: RecordType.PREPARED }), -1, 1_700_000_000_005);
    const plain = encodeRecord(input({ msgId: 'B'.repeat(32), tag: undefined, keys: [], properties: {} }), 8, 1_700_000_000_006);
    const [a, b] = receivedFromRecords({ o: [7, 8], r: [0, 3] }, Buffer.concat([half, plain]));
    expect(a).toEqual({
      msgId: 'A'.repeat(32),
      topic: 'orders',
      queueId: 2,
      queueOffset: 7,
      tag: 'paid',
      keys: ['order-1'],
      properties: { region: 'eu' },
      body: Buffer.from('{"order":1}'),
      bornTimestamp: 1_700_000_000_000,
      storeTimestamp: 1_700_000_000_005,
      reconsumeTimes: 0,
    });
    expect(b).toMatchObject({ msgId: 'B'.repeat(32), queueOffset: 8, reconsumeTimes: 3, keys: [], properties: {} });
    expect(b!.tag).toBeUndefined();
  });

  it('shows a retry copy as its original message, acked where it lives, without broker properties', () => {
    const properties = {
      region: 'eu',
      [SystemProperty.ORIGIN_TOPIC]: 'orders',
      [SystemProperty.ORIGIN_QUEUE]: '2',
      [SystemProperty.ORIGIN_OFFSET]: '41',
      [SystemProperty.FAILURE_REASON]: 'boom',
      [SystemProperty.DELIVER_AT]: '1700000000000',
    };
    const copy = encodeRecord(input({ type: RecordType.DELAYED, topic: '%RETRY%points', queueId: 0, properties, reconsumeTimes: 1 }), -1, 1);
    const [m] = receivedFromRecords({ o: [5], r: [1] }, copy);
    expect(m).toMatchObject({ topic: 'orders', queueId: 2, queueOffset: 41, ackRef: ['%RETRY%points', 0, 5], properties: { region: 'eu' }, reconsumeTimes: 1 });
  });

  it('rejects a record whose bytes changed on the way (crc), naming its queue offset', () => {
    const records = Buffer.concat([encodeRecord(input(), 0, 1), encodeRecord(input(), 1, 1)]);
    records[records.length - 2] ^= 0xff; // a body byte of the second
    expect(() => receivedFromRecords({ o: [0, 1], r: [0, 0] }, records)).toThrow(CorruptDataError);
    expect(() => receivedFromRecords({ o: [0, 1], r: [0, 0] }, records)).toThrow(/record 1 .*queue offset 1.*crc mismatch/);
  });

  it('rejects a body that does not split into the records the lists announce', () => {
    const one = encodeRecord(input(), 0, 1);
    expect(() => receivedFromRecords({ o: [0, 1], r: [0, 0] }, one)).toThrow(MalformedFrameError);
    expect(() => receivedFromRecords({ o: [0], r: [0] }, Buffer.concat([one, Buffer.from('xx')]))).toThrow(/2 bytes after its last record/);
    expect(() => receivedFromRecords({ o: [0], r: [0] }, one.subarray(0, one.length - 1))).toThrow(/claims \d+ bytes/);
    expect(() => receivedFromRecords({ o: [0], r: [] } as never, one)).toThrow(/matching offset and reconsume-times lists/);
  });
});
