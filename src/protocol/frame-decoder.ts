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
  /** pushTransient: the frame being filled, and a length prefix split across reads */
  private partial: Buffer | undefined;
  private partialFilled = 0;
  private readonly prefix = Buffer.alloc(4);
  private prefixFilled = 0;

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
        this.checkLength(frameLength);
        if (this.buffered < 4 + frameLength) break;
        frames.push(frameOf(this.take(4 + frameLength)));
      }
    } catch (err) {
      this.fail(err as Error);
    }
    return frames;
  }

  /**
   * `push` for a chunk in memory that is reused once this returns (a socket read with `onread`):
   * nothing of it is kept. Each frame is copied once into a buffer of its own size, allocated when
   * its length prefix has arrived; no buffer per socket read, no joining of chunks.
   */
  pushTransient(chunk: Buffer): Frame[] {
    if (this.failed) throw this.failed;
    const frames: Frame[] = [];
    try {
      let at = 0;
      while (at < chunk.length) {
        if (this.partial === undefined) {
          const n = Math.min(4 - this.prefixFilled, chunk.length - at);
          chunk.copy(this.prefix, this.prefixFilled, at, at + n);
          this.prefixFilled += n;
          at += n;
          if (this.prefixFilled < 4) break;
          const frameLength = this.prefix.readUInt32BE(0);
          this.checkLength(frameLength);
          this.partial = Buffer.allocUnsafe(4 + frameLength);
          this.prefix.copy(this.partial, 0);
          this.partialFilled = 4;
          this.prefixFilled = 0;
        }
        const n = Math.min(this.partial.length - this.partialFilled, chunk.length - at);
        chunk.copy(this.partial, this.partialFilled, at, at + n);
        this.partialFilled += n;
        at += n;
        if (this.partialFilled < this.partial.length) break;
        const bytes = this.partial;
        this.partial = undefined;
        frames.push(frameOf(bytes));
      }
    } catch (err) {
      this.fail(err as Error);
    }
    return frames;
  }

  private checkLength(frameLength: number): void {
    if (frameLength > this.maxFrameSize) {
      throw new FrameTooLargeError(`frame of ${frameLength} bytes exceeds the limit of ${this.maxFrameSize}`, {
        context: { frameLength, maxFrameSize: this.maxFrameSize },
      });
    }
    if (frameLength < 4) throw new MalformedFrameError(`frame length ${frameLength} is shorter than its header length field`);
  }

  private fail(err: Error): never {
    this.failed = err;
    this.chunks = [];
    this.buffered = 0;
    this.partial = undefined;
    throw err;
  }

  /** Bytes received but not yet part of a whole frame. */
  get pendingBytes(): number {
    return this.buffered + this.prefixFilled + (this.partial === undefined ? 0 : this.partialFilled);
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

/** A whole frame's bytes (length prefix included) as header and body; the body is a view. */
function frameOf(bytes: Buffer): Frame {
  const frameLength = bytes.length - 4;
  const headerLength = bytes.readUInt32BE(4);
  if (headerLength > frameLength - 4) {
    throw new MalformedFrameError(`header length ${headerLength} exceeds frame length ${frameLength}`);
  }
  const headerEnd = FRAME_PREFIX_BYTES + headerLength;
  return { header: decodeHeader(bytes.subarray(FRAME_PREFIX_BYTES, headerEnd)), body: bytes.subarray(headerEnd) };
}
