import { MalformedFrameError } from '../common/errors.js';

/** Concatenates message bodies for a frame body; each message header entry records its length. */
export function packBodies(bodies: readonly Uint8Array[]): Buffer {
  if (bodies.length === 1) {
    const b = bodies[0]!;
    return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.length);
  }
  return Buffer.concat(bodies as Uint8Array[]);
}

/**
 * packBodies for parts that may already lie back to back in one buffer (the records of a queue
 * read, which the store copies into one buffer): then one view of it, no copy. For buffers this
 * process owns; a producer's bodies are the caller's and are copied (packBodies).
 */
export function joinParts(parts: readonly Buffer[]): Buffer {
  const first = parts[0];
  if (first === undefined) return Buffer.alloc(0);
  let end = first.byteOffset + first.length;
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i]!;
    if (p.buffer !== first.buffer || p.byteOffset !== end) return Buffer.concat(parts);
    end += p.length;
  }
  return Buffer.from(first.buffer, first.byteOffset, end - first.byteOffset);
}

/** Splits a frame body into per-message bodies (zero-copy views) using each entry's `n`. */
export function splitBodies(body: Buffer, entries: readonly { n: number }[]): Buffer[] {
  // The common one-message transaction of a batch: its slice of the frame already is the body.
  if (entries.length === 1 && entries[0]!.n === body.length) return [body];
  const out: Buffer[] = new Array(entries.length);
  let pos = 0;
  for (let i = 0; i < entries.length; i++) {
    const n = entries[i]!.n;
    if (!Number.isInteger(n) || n < 0 || pos + n > body.length) {
      throw new MalformedFrameError(`message ${i} claims ${n} body bytes but the frame has ${body.length - pos} left`);
    }
    out[i] = body.subarray(pos, pos + n);
    pos += n;
  }
  if (pos !== body.length) throw new MalformedFrameError(`frame body has ${body.length - pos} bytes not claimed by any message`);
  return out;
}
