import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { ConnectionClosedError, HalfmqError, TimeoutError, errorFromWire, toWireError } from '../common/errors.js';
import { commandName } from './commands.js';
import { FrameDecoder } from './frame-decoder.js';
import { FrameFlags, encodeFrame } from './frame.js';
import type { Frame, FrameHeader } from './frame.js';

/**
 * One end of a halfmq connection: frames in and out, requests correlated to responses, many in
 * flight at once (pipelining), requests possible in both directions. It owns no policy (no
 * reconnects, no commands): the client and the broker build theirs on it.
 *
 * Writes issued in one tick are corked together so pipelined frames share one syscall, up to
 * CORK_LIMIT bytes: past that they go out at once, so that the other side starts on a large
 * request (a producer's 128 KiB part) while this side still builds the rest of the tick's.
 */
export interface PeerOptions {
  maxFrameSize?: number;
  /** default request timeout */
  requestTimeoutMs?: number;
}

export interface PeerEvents {
  /** an incoming request (not a response); answer it with reply/replyError unless it is oneway */
  request: [frame: Frame];
  /** the connection is gone; `error` says why when it was not a clean end */
  close: [error: Error | undefined];
  /** the byte stream could not be decoded; the connection is being closed */
  protocolError: [error: HalfmqError];
}

interface Pending {
  resolve: (frame: Frame) => void;
  reject: (err: Error) => void;
  deadline: number;
  code: number;
}

const SWEEP_MS = 50;
/**
 * Measured with two commit-log rounds in flight (bench/ab.sh, 5 pairs): tx median +3%, produce +2%
 * with p50 lower in 4 of 5, consume the same with less broker CPU. With one round in flight
 * (session 9) it was worse: the early part's round then held up the rest of the tick's.
 */
const CORK_LIMIT = 64 * 1024;

export class Peer extends EventEmitter<PeerEvents> {
  readonly socket: Duplex;
  private readonly decoder: FrameDecoder;
  private readonly requestTimeoutMs: number;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private corked = false;
  /** bytes written since the socket was last uncorked */
  private corkedBytes = 0;
  private closed = false;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(socket: Duplex, options: PeerOptions = {}) {
    super();
    this.socket = socket;
    this.decoder = new FrameDecoder({ maxFrameSize: options.maxFrameSize });
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.shutdown(err));
    socket.on('close', () => this.shutdown(undefined));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Sends a request and resolves with the response frame; rejects with the typed remote error. */
  request(code: number, payload: unknown, body?: Uint8Array, options: { timeoutMs?: number } = {}): Promise<Frame> {
    if (this.closed) return Promise.reject(new ConnectionClosedError(`connection closed before ${commandName(code)} was sent`));
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    return new Promise<Frame>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deadline: Date.now() + timeoutMs, code });
      this.ensureSweep();
      this.write({ c: code, i: id, f: 0, d: payload }, body);
    });
  }

  /** Fire and forget: no response is sent, none is awaited. */
  send(code: number, payload: unknown, body?: Uint8Array): void {
    if (this.closed) throw new ConnectionClosedError(`connection closed before ${commandName(code)} was sent`);
    this.write({ c: code, i: this.nextId++, f: FrameFlags.ONEWAY, d: payload }, body);
  }

  reply(request: FrameHeader, payload: unknown, body?: Uint8Array): void {
    if (this.closed || request.f & FrameFlags.ONEWAY) return;
    this.write({ c: request.c, i: request.i, f: FrameFlags.RESPONSE, d: payload }, body);
  }

  replyError(request: FrameHeader, err: unknown): void {
    if (this.closed || request.f & FrameFlags.ONEWAY) return;
    this.write({ c: request.c, i: request.i, f: FrameFlags.RESPONSE, e: toWireError(err) });
  }

  /** Closes after flushing what was written. */
  close(): void {
    if (this.closed) return;
    this.socket.end();
    this.shutdown(undefined);
  }

  destroy(err?: Error): void {
    this.socket.destroy();
    this.shutdown(err);
  }

  private write(header: FrameHeader, body?: Uint8Array): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.corkedBytes = 0;
        this.socket.uncork();
      });
    }
    for (const part of encodeFrame(header, body)) {
      this.corkedBytes += part.length;
      this.socket.write(part);
    }
    if (this.corkedBytes >= CORK_LIMIT) {
      // Still corked for the rest of the tick: the nextTick above uncorks for good.
      this.socket.uncork();
      this.socket.cork();
      this.corkedBytes = 0;
    }
  }

  /**
   * Bytes from a socket read into memory that is reused after this returns (net's `onread`
   * option, which then emits no 'data'): decoded without keeping any of it.
   */
  receiveTransient(chunk: Buffer): void {
    this.onData(chunk, true);
  }

  private onData(chunk: Buffer, transient = false): void {
    let frames: Frame[];
    try {
      frames = transient ? this.decoder.pushTransient(chunk) : this.decoder.push(chunk);
    } catch (err) {
      const error = err as HalfmqError;
      this.emit('protocolError', error);
      // Best effort: tell the other side why before closing; correlation id 0 = "not a reply".
      if (!this.closed) {
        this.write({ c: 0, i: 0, f: FrameFlags.RESPONSE, e: toWireError(error) });
        this.socket.end();
      }
      this.shutdown(error);
      return;
    }
    for (const frame of frames) {
      if (frame.header.f & FrameFlags.RESPONSE) this.onResponse(frame);
      else this.emit('request', frame);
    }
  }

  private onResponse(frame: Frame): void {
    const { header } = frame;
    const p = this.pending.get(header.i);
    if (!p) {
      // A late answer after a timeout, or the broker's "why I am closing" (id 0).
      if (header.i === 0 && header.e) this.shutdown(errorFromWire(header.e));
      return;
    }
    this.pending.delete(header.i);
    if (header.e) p.reject(errorFromWire(header.e));
    else p.resolve(frame);
  }

  private ensureSweep(): void {
    if (this.sweepTimer) return;
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweepTimer.unref();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (p.deadline <= now) {
        this.pending.delete(id);
        p.reject(new TimeoutError(`${commandName(p.code)} got no response in time`, { context: { command: commandName(p.code) } }));
      }
    }
    if (this.pending.size === 0 && this.sweepTimer) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  private shutdown(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    const reason = new ConnectionClosedError(err ? `connection closed: ${err.message}` : 'connection closed', { cause: err });
    for (const p of this.pending.values()) p.reject(reason);
    this.pending.clear();
    this.emit('close', err);
  }
}
