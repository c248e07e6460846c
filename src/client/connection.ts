import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Backoff, backoffDelay } from '../common/backoff.js';
import type { BackoffOptions } from '../common/backoff.js';
import {
  ConnectionFailedError,
  HalfmqError,
  IllegalStateError,
  InvalidArgumentError,
  NotAMemberError,
  TimeoutError,
  UnknownCommandError,
  isRetriable,
} from '../common/errors.js';
import { Command, PROTOCOL_VERSION, commandName } from '../protocol/commands.js';
import type { HelloRequest, HelloResponse } from '../protocol/commands.js';
import type { Frame } from '../protocol/frame.js';
import { Peer } from '../protocol/peer.js';
import { parseEndpoint } from './endpoint.js';
import type { Endpoint } from './endpoint.js';

/** Options every client (Producer, consumers, Admin) accepts. */
export interface ClientOptions {
  /** The broker, `'host:port'` or `'[ipv6]:port'`. */
  endpoints: string;
  /** Shown in group status; default `<hostname>-<pid>-<random>`. */
  clientId?: string;
  /** How long a request waits for a (re)connection before failing with ConnectionFailedError. Default 10 s. */
  connectTimeoutMs?: number;
  /** Default time to wait for a response once a request is sent. Default 30 s. */
  requestTimeoutMs?: number;
  /** Delays between background reconnect attempts. Default 100 ms doubling up to 5 s, with jitter. */
  reconnectBackoff?: BackoffOptions;
}

export interface ConnectionOptions extends ClientOptions {
  /** Sent in HELLO so the broker can reach this connection about the group's transactions. */
  producerGroup?: string;
}

/**
 * idle → connecting → ready → closed. A dropped connection goes from ready back to connecting and
 * reconnects in the background; a first connection that fails goes back to idle (the next request
 * tries again), so a wrong address fails fast instead of retrying forever.
 */
export type ConnectionState = 'idle' | 'connecting' | 'ready' | 'closed';

export interface ConnectionEvents {
  stateChange: [state: ConnectionState, previous: ConnectionState];
  /** HELLO completed (first connection and every reconnection). */
  ready: [hello: HelloResponse];
  /** HELLO completed on a new socket after an established one dropped. Group members re-JOIN here. */
  reconnect: [hello: HelloResponse];
  /** an established connection dropped; a reconnect follows */
  disconnect: [error: Error | undefined];
  /** A request from the broker (e.g. a transaction check). Without a listener it is refused. */
  request: [frame: Frame, peer: Peer];
}

export interface RequestOptions {
  /** wait for the response this long once sent; default the connection's requestTimeoutMs */
  timeoutMs?: number;
  /**
   * Resend up to this many times on a retriable error. Only for commands that are safe to repeat
   * (idempotent reads, topic creation, acks, a SEND that keeps its message ids). Default 0.
   */
  retries?: number;
}

export interface Reply<T> {
  payload: T;
  body: Buffer;
}

interface Waiter {
  resolve: (peer: Peer) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
// The broker bounds what it sends by its own frame limit; the client trusts its broker and only
// guards against a corrupt stream, so its receive limit is generous (a PULL of many large messages).
const CLIENT_MAX_FRAME_SIZE = 256 * 1024 * 1024;
/** Each socket read goes into this connection's buffer of this size (see startAttempt). */
const READ_BUFFER_BYTES = 128 * 1024;
// How long close() waits for the broker to acknowledge our FIN before destroying the socket.
const CLOSE_GRACE_MS = 1_000;

export function defaultClientId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/**
 * One logical connection to a broker: lazy connect, HELLO handshake, heartbeats, request/response
 * with timeouts, and background reconnection with capped exponential backoff after a drop.
 * Requests issued while (re)connecting wait for readiness, up to `connectTimeoutMs`.
 */
export class Connection extends EventEmitter<ConnectionEvents> {
  readonly endpoint: Endpoint;
  readonly clientId: string;
  private readonly options: ConnectionOptions;
  private readonly connectTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly backoff: Backoff;
  private currentState: ConnectionState = 'idle';
  private peer: Peer | undefined;
  private hello: HelloResponse | undefined;
  private readonly waiters = new Set<Waiter>();
  /** set once a HELLO succeeded: from then on a drop means "reconnect in the background" */
  private everReady = false;
  private attemptSocket: net.Socket | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastError: Error | undefined;

  constructor(options: ConnectionOptions) {
    super();
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('client options are required');
    this.endpoint = parseEndpoint(options.endpoints);
    this.options = options;
    this.clientId = options.clientId ?? defaultClientId();
    this.connectTimeoutMs = positive(options.connectTimeoutMs, 'connectTimeoutMs') ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.requestTimeoutMs = positive(options.requestTimeoutMs, 'requestTimeoutMs') ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.backoff = new Backoff(options.reconnectBackoff);
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** The broker's HELLO answer of the current (or last) connection. */
  get brokerInfo(): HelloResponse | undefined {
    return this.hello;
  }

  /** Connects if needed and resolves once ready. */
  async connect(): Promise<HelloResponse> {
    await this.waitReady(this.connectTimeoutMs);
    return this.hello!;
  }

  /** Sends a request once ready; resolves with the response payload and body. */
  async request<T>(code: number, payload: unknown, body?: Uint8Array, options: RequestOptions = {}): Promise<Reply<T>> {
    const retries = options.retries ?? 0;
    for (let attempt = 0; ; attempt++) {
      try {
        const peer = await this.waitReady(this.connectTimeoutMs);
        const frame = await peer.request(code, payload, body, { timeoutMs: options.timeoutMs ?? this.requestTimeoutMs });
        return { payload: (frame.header.d ?? {}) as T, body: frame.body };
      } catch (err) {
        // NOT_A_MEMBER is retriable only after a re-JOIN, which is the consumer's job, not ours.
        const retry = attempt < retries && isRetriable(err) && !(err instanceof NotAMemberError) && this.currentState !== 'closed';
        if (!retry) throw err;
        await sleep(backoffDelay(attempt, { initialMs: 100, maxMs: 2_000 }));
      }
    }
  }

  /** Sends a request with the ONEWAY flag once ready: no response, resolves when written. */
  async sendOneway(code: number, payload: unknown, body?: Uint8Array): Promise<void> {
    const peer = await this.waitReady(this.connectTimeoutMs);
    peer.send(code, payload, body);
  }

  /** Closes for good: pending waiters fail, the socket is ended, no reconnects. Idempotent. */
  async close(): Promise<void> {
    if (this.currentState === 'closed') return;
    this.setState('closed');
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.stopHeartbeat();
    this.rejectWaiters(new IllegalStateError('the client was shut down'));
    this.attemptSocket?.destroy();
    const peer = this.peer;
    this.peer = undefined;
    if (!peer) return;
    const socket = peer.socket as net.Socket;
    peer.close();
    if (!socket.closed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          socket.destroy();
          resolve();
        }, CLOSE_GRACE_MS);
        socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private waitReady(timeoutMs: number): Promise<Peer> {
    if (this.currentState === 'ready' && this.peer) return Promise.resolve(this.peer);
    if (this.currentState === 'closed') return Promise.reject(new IllegalStateError('the client was shut down'));
    if (this.currentState === 'idle') this.startAttempt();
    return new Promise<Peer>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          const last = this.lastError;
          if (last instanceof ConnectionFailedError) reject(new ConnectionFailedError(last.message, { cause: last, context: last.context }));
          else reject(this.connectError(last ? describeError(last) : `no connection within ${timeoutMs} ms`, last));
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  private startAttempt(): void {
    if (this.attemptSocket || this.currentState === 'closed') return;
    this.setState('connecting');
    // Reads land in one buffer of this connection's, and the decoder copies each frame out once:
    // a consumer no longer allocates a 64 KiB buffer per read and a joined copy per large reply,
    // off-heap churn that made V8 collect several times a second while draining.
    let peer: Peer | undefined;
    const socket = net.connect({
      host: this.endpoint.host,
      port: this.endpoint.port,
      onread: {
        buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
        callback: (n: number, buf: Uint8Array): boolean => {
          peer?.receiveTransient(Buffer.from(buf.buffer, buf.byteOffset, n));
          return true; // keep reading
        },
      },
    });
    this.attemptSocket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    let socketError: Error | undefined;
    socket.once('error', (err) => {
      socketError ??= err;
    });
    peer = new Peer(socket, { maxFrameSize: CLIENT_MAX_FRAME_SIZE, requestTimeoutMs: this.requestTimeoutMs });
    const hello: HelloRequest = { version: PROTOCOL_VERSION, clientId: this.clientId };
    if (this.options.producerGroup !== undefined) hello.producerGroup = this.options.producerGroup;
    // Writes before the TCP handshake completes are buffered by the socket; HELLO's timeout doubles
    // as the connect timeout.
    peer.request(Command.HELLO, hello, undefined, { timeoutMs: this.connectTimeoutMs }).then(
      (frame) => {
        this.attemptSocket = undefined;
        if (peer.isClosed) this.onAttemptFailed(this.connectError('connection closed during the handshake'));
        else this.onEstablished(peer, frame.header.d as HelloResponse);
      },
      (err: unknown) => {
        this.attemptSocket = undefined;
        peer.destroy();
        this.onAttemptFailed(this.attemptError(err, socketError));
      },
    );
  }

  private attemptError(err: unknown, socketError: Error | undefined): HalfmqError {
    // A typed refusal from the broker (e.g. unsupported version) is more useful than "could not connect".
    if (err instanceof HalfmqError && err.context.remote === true) return err;
    if (socketError) return this.connectError(describeError(socketError), socketError);
    if (err instanceof TimeoutError) return this.connectError(`no answer within ${this.connectTimeoutMs} ms`, err);
    return this.connectError(err instanceof Error ? err.message : String(err), err);
  }

  private connectError(why: string, cause?: unknown): ConnectionFailedError {
    return new ConnectionFailedError(`could not connect to broker at ${this.endpoint.address}: ${why}`, {
      cause,
      context: { address: this.endpoint.address },
    });
  }

  private onEstablished(peer: Peer, hello: HelloResponse): void {
    if (this.currentState === 'closed') {
      peer.close();
      return;
    }
    this.peer = peer;
    this.hello = hello;
    this.lastError = undefined;
    this.backoff.reset();
    peer.on('close', (err) => this.onDropped(peer, err));
    peer.on('request', (frame) => {
      if (this.listenerCount('request') > 0) this.emit('request', frame, peer);
      else peer.replyError(frame.header, new UnknownCommandError(`client does not handle ${commandName(frame.header.c)}`));
    });
    this.startHeartbeat(hello.heartbeatIntervalMs);
    const isReconnect = this.everReady;
    this.everReady = true;
    this.setState('ready');
    this.emit('ready', hello);
    // Emitted before waiters resume, so a consumer's re-JOIN is written ahead of their requests.
    if (isReconnect) this.emit('reconnect', hello);
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve(peer);
    }
    this.waiters.clear();
  }

  private onAttemptFailed(err: HalfmqError): void {
    this.lastError = err;
    if (this.currentState === 'closed') return;
    if (!this.everReady) {
      // Never connected: report now rather than retry an address that may simply be wrong.
      this.setState('idle');
      this.rejectWaiters(err);
      return;
    }
    this.scheduleReconnect();
  }

  private onDropped(peer: Peer, err: Error | undefined): void {
    if (peer !== this.peer) return;
    this.peer = undefined;
    this.stopHeartbeat();
    if (this.currentState === 'closed') return;
    this.lastError = err;
    this.setState('connecting');
    this.emit('disconnect', err);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.currentState === 'closed') return;
    this.setState('connecting');
    // Not unref'd: a started client is a live resource, like the socket it replaces.
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.startAttempt();
    }, this.backoff.next());
  }

  private startHeartbeat(intervalMs: number): void {
    this.stopHeartbeat();
    if (!(intervalMs > 0)) return;
    this.heartbeatTimer = setInterval(() => {
      const peer = this.peer;
      if (!peer) return;
      peer.request(Command.HEARTBEAT, {}, undefined, { timeoutMs: Math.max(2 * intervalMs, 5_000) }).catch((err: unknown) => {
        // No answer to a heartbeat: the link is probably half-open. Drop it to force a reconnect.
        if (err instanceof TimeoutError && peer === this.peer) peer.destroy(err);
      });
    }, intervalMs);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private rejectWaiters(err: Error): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiters.clear();
  }

  private setState(state: ConnectionState): void {
    const previous = this.currentState;
    if (previous === state) return;
    this.currentState = state;
    this.emit('stateChange', state, previous);
  }
}

function describeError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (err instanceof HalfmqError) return err.message;
  return typeof code === 'string' ? code : err.message;
}

function positive(value: number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError(`${name} must be a positive number of milliseconds`);
  }
  return value;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
