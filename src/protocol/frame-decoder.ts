import { FrameTooLargeError, MalformedFrameError } from '../common/errors.js';
import { DEFAULT_MAX_FRAME_SIZE, FRAME_PREFIX_BYTES, decodeHeader } from './frame.js';
import type { Frame } from './frame.js';

/**
 * Byte-level frame decoder, free of I/O: feed it chunks exactly as they come off a socket, split
 * anywhere, and it returns every whole frame they complete. The size limit is checked from the
 * 4-byte prefix, before a single byte of the frame body is buffered.
 *
 * After it throws (frame too large, malformed header) the stream is out of sync and the decoder
 * stays failed: the connection must close.
 */
export class FrameDecoder {
  private readonly maxFrameSize: number;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed: Error | undefined;

  constructor(options: { maxFrameSize?: number } = {}) {
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
  }

  push(chunk: Buffer): Frame[] {
    if (this.failed) throw this.failed;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Frame[] = [];
    try {
      for (;;) {
        if (this.buffered < 4) break;
        const frameLength = this.peekUInt32(0);
        if (frameLength > this.maxFrameSize) {
          throw new FrameTooLargeError(`frame of ${frameLength} bytes exceeds the limit of ${this.maxFrameSize}`, {
            context: { frameLength, maxFrameSize: this.maxFrameSize },
          });
        }
        if (frameLength < 4) throw new MalformedFrameError(`frame length ${frameLength} is shorter than its header length field`);
        if (this.buffered < 4 + frameLength) break;
        const bytes = this.take(4 + frameLength);
        const headerLength = bytes.readUInt32BE(4);
        if (headerLength > frameLength - 4) {
          throw new MalformedFrameError(`header length ${headerLength} exceeds frame length ${frameLength}`);
        }
        const headerEnd = FRAME_PREFIX_BYTES + headerLength;
        frames.push({ header: decodeHeader(bytes.subarray(FRAME_PREFIX_BYTES, headerEnd)), body: bytes.subarray(headerEnd) });
      }
    } catch (err) {
      this.failed = err as Error;
      this.chunks = [];
      this.buffered = 0;
      throw err;
    }
    return frames;
  }

  /** Bytes received but not yet part of a whole frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  private peekUInt32(offset: number): number {
    const first = this.chunks[0]!;
    if (first.length >= offset + 4) return first.readUInt32BE(offset);
    const bytes = Buffer.allocUnsafe(4);
    let copied = 0;
    for (const c of this.chunks) {
      const n = Math.min(c.length, 4 - copied);
      c.copy(bytes, copied, 0, n);
      copied += n;
      if (copied === 4) break;
    }
    return bytes.readUInt32BE(0);
  }

  /** Removes n bytes from the front; zero-copy when they sit in one chunk. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let copied = 0;
      while (copied < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - copied);
        c.copy(out, copied, 0, k);
        copied += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    return out;
  }
}
