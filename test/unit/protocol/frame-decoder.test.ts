import { describe, expect, it } from 'vitest';
import { FrameTooLargeError, MalformedFrameError } from '../../../src/common/errors.js';
import { FrameDecoder } from '../../../src/protocol/frame-decoder.js';
import { FrameFlags, encodeFrame } from '../../../src/protocol/frame.js';
import type { Frame } from '../../../src/protocol/frame.js';

function stream(): { bytes: Buffer; expected: { c: number; i: number; d: unknown; body: string }[] } {
  const expected = [
    { c: 10, i: 1, d: { messages: [{ t: 'orders', id: 'a', n: 5, b: 1 }] }, body: 'hello' },
    { c: 22, i: 2, d: { group: 'g', max: 32, waitMs: 1000 }, body: '' },
    { c: 10, i: 3, d: { text: 'ünïcødé ✓', nested: { a: [1, 2, 3] } }, body: 'x'.repeat(300) },
    { c: 2, i: 4, d: {}, body: '' },
  ];
  const parts = expected.flatMap((e) => encodeFrame({ c: e.c, i: e.i, f: 0, d: e.d }, Buffer.from(e.body)));
  return { bytes: Buffer.concat(parts), expected };
}

function simplify(frames: Frame[]) {
  return frames.map((f) => ({ c: f.header.c, i: f.header.i, d: f.header.d, body: f.body.toString() }));
}

describe('FrameDecoder', () => {
  it('yields the same frames whether fed whole or split at every boundary', () => {
    const { bytes, expected } = stream();
    expect(simplify(new FrameDecoder().push(bytes))).toEqual(expected);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const d = new FrameDecoder();
      const frames = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))];
      expect(simplify(frames), `split at ${cut}`).toEqual(expected);
      expect(d.pendingBytes).toBe(0);
    }
  });

  it('yields the same frames when fed one byte at a time and in three random pieces', () => {
    const { bytes, expected } = stream();
    const d = new FrameDecoder();
    const frames: Frame[] = [];
    for (let i = 0; i < bytes.length; i++) frames.push(...d.push(bytes.subarray(i, i + 1)));
    expect(simplify(frames)).toEqual(expected);
    for (let trial = 0; trial < 200; trial++) {
      const a = Math.floor(Math.random() * bytes.length);
      const b = a + Math.floor(Math.random() * (bytes.length - a));
      const d3 = new FrameDecoder();
      const got = [...d3.push(bytes.subarray(0, a)), ...d3.push(bytes.subarray(a, b)), ...d3.push(bytes.subarray(b))];
      expect(simplify(got)).toEqual(expected);
    }
  });

  it('keeps the response flag', () => {
    const [frame] = new FrameDecoder().push(Buffer.concat(encodeFrame({ c: 1, i: 9, f: FrameFlags.RESPONSE, d: { ok: true } })));
    expect(frame!.header.f & FrameFlags.RESPONSE).toBe(FrameFlags.RESPONSE);
  });

  it('rejects a frame over the limit from its 4-byte prefix, before buffering it', () => {
    const d = new FrameDecoder({ maxFrameSize: 1024 });
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(2 * 1024 * 1024 * 1024 - 1);
    expect(() => d.push(prefix)).toThrow(FrameTooLargeError);
    // The stream is out of sync: the decoder stays failed.
    expect(() => d.push(Buffer.from([0]))).toThrow(FrameTooLargeError);
  });

  it('rejects a header that is not msgpack or lacks required fields', () => {
    const garbage = Buffer.from([0, 0, 0, 9, 0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1]);
    expect(() => new FrameDecoder().push(garbage)).toThrow(MalformedFrameError);
    const noFields = Buffer.concat(encodeFrame({ x: 1 } as never));
    expect(() => new FrameDecoder().push(noFields)).toThrow(MalformedFrameError);
  });

  it('rejects a header length that exceeds the frame', () => {
    const bad = Buffer.from([0, 0, 0, 6, 0, 0, 0, 99, 1, 2]);
    expect(() => new FrameDecoder().push(bad)).toThrow(MalformedFrameError);
  });

  describe('pushTransient (a reused read buffer)', () => {
    /** Feeds `pieces` through one reused buffer, scribbling over it after each push, as a socket would. */
    function feed(d: FrameDecoder, bytes: Buffer, cuts: number[]): Frame[] {
      const reused = Buffer.alloc(bytes.length);
      const frames: Frame[] = [];
      let from = 0;
      for (const to of [...cuts, bytes.length]) {
        const n = bytes.copy(reused, 0, from, to);
        frames.push(...d.pushTransient(reused.subarray(0, n)));
        reused.fill(0xee); // the next read lands here: nothing handed out may see it
        from = to;
      }
      return frames;
    }

    it('yields the frames push does for every split, keeping nothing of the reused buffer', () => {
      const { bytes, expected } = stream();
      for (let cut = 0; cut <= bytes.length; cut++) {
        const d = new FrameDecoder();
        expect(simplify(feed(d, bytes, [cut])), `split at ${cut}`).toEqual(expected);
        expect(d.pendingBytes).toBe(0);
      }
      const oneByOne = new FrameDecoder();
      expect(simplify(feed(oneByOne, bytes, Array.from({ length: bytes.length - 1 }, (_, i) => i + 1)))).toEqual(expected);
    });

    it('counts a partial frame as pending, and fails like push on a bad prefix or header', () => {
      const { bytes } = stream();
      const d = new FrameDecoder();
      d.pushTransient(bytes.subarray(0, 2));
      expect(d.pendingBytes).toBe(2);
      d.pushTransient(bytes.subarray(2, 10));
      expect(d.pendingBytes).toBe(10);
      const big = new FrameDecoder({ maxFrameSize: 1024 });
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32BE(2048);
      expect(() => big.pushTransient(prefix)).toThrow(FrameTooLargeError);
      expect(() => big.pushTransient(Buffer.from([0]))).toThrow(FrameTooLargeError);
      expect(() => new FrameDecoder().pushTransient(Buffer.from([0, 0, 0, 6, 0, 0, 0, 99, 1, 2]))).toThrow(MalformedFrameError);
    });
  });
});
