import { CorruptDataError } from '../common/errors.js';
import { tagHash } from '../common/tags.js';
import type { DispatchItem } from './dispatcher.js';
import { putU16, putU32, putU64, u16, u32, u64 } from '../common/le.js';
import { RecordType } from './types.js';

/**
 * Body of a RELEASE record: the held records (transaction halves, delayed messages) it makes
 * visible, each with the queue offset it was given. Little-endian:
 *
 *   u32 count, then per pointer:
 *     u64 physicalOffset   u32 size   u32 queueId   u64 queueOffset   u32 tagHash
 *     u16 topic length     topic UTF-8
 *
 * Dispatch turns each pointer into a consume-queue entry at the HELD record's position, so a
 * release costs one small record, never a copy of the message (RocketMQ re-appends, #1543).
 */
export interface ReleasePointer {
  physicalOffset: number;
  size: number;
  topic: string;
  queueId: number;
  queueOffset: number;
  tagHash: number;
}

export function encodeReleaseBody(pointers: readonly ReleasePointer[]): Buffer {
  let size = 4;
  // The pointers of one release nearly always share a topic or two: encode each name once.
  const encoded = new Map<string, Buffer>();
  const topics = pointers.map((p) => {
    let t = encoded.get(p.topic);
    if (t === undefined) encoded.set(p.topic, (t = Buffer.from(p.topic, 'utf8')));
    return t;
  });
  for (const t of topics) size += 32 + 2 + t.length;
  const buf = Buffer.allocUnsafe(size);
  putU32(buf, 0, pointers.length);
  let pos = 4;
  pointers.forEach((p, i) => {
    putU64(buf, pos, p.physicalOffset);
    putU32(buf, pos + 8, p.size);
    putU32(buf, pos + 12, p.queueId);
    putU64(buf, pos + 16, p.queueOffset);
    putU32(buf, pos + 24, p.tagHash >>> 0);
    putU32(buf, pos + 28, 0);
    putU16(buf, pos + 32, topics[i]!.length);
    topics[i]!.copy(buf, pos + 34);
    pos += 34 + topics[i]!.length;
  });
  return buf;
}

export function decodeReleaseBody(body: Buffer, physicalOffset: number): ReleasePointer[] {
  const bad = (): never => {
    throw new CorruptDataError(`release record at ${physicalOffset} has a malformed pointer list`, { context: { physicalOffset } });
  };
  if (body.length < 4) bad();
  const count = u32(body, 0);
  const out: ReleasePointer[] = [];
  let pos = 4;
  for (let i = 0; i < count; i++) {
    if (pos + 34 > body.length) bad();
    const topicLen = u16(body, pos + 32);
    if (pos + 34 + topicLen > body.length) bad();
    out.push({
      physicalOffset: u64(body, pos),
      size: u32(body, pos + 8),
      queueId: u32(body, pos + 12),
      queueOffset: u64(body, pos + 16),
      tagHash: u32(body, pos + 24),
      topic: body.toString('utf8', pos + 34, pos + 34 + topicLen),
    });
    pos += 34 + topicLen;
  }
  return out;
}

/** Dispatch items of a RELEASE record: one queue entry per pointer, plus the record itself. */
export function releaseDispatchItems(pointers: readonly ReleasePointer[], self: { physicalOffset: number; size: number }): DispatchItem[] {
  const items: DispatchItem[] = pointers.map((p) => ({
    type: RecordType.NORMAL,
    topic: p.topic,
    queueId: p.queueId,
    queueOffset: p.queueOffset,
    physicalOffset: p.physicalOffset,
    size: p.size,
    tagHash: p.tagHash,
  }));
  // Last, so dispatchedUpTo moves past the release record itself.
  items.push({ type: RecordType.RELEASE, topic: '', queueId: 0, queueOffset: -1, physicalOffset: self.physicalOffset, size: self.size, tagHash: 0 });
  return items;
}

export { tagHash };
