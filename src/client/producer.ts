import { IllegalStateError, InternalError, InvalidArgumentError, isRetriable } from '../common/errors.js';
import type { Message, SendResult } from '../common/message.js';
import { validateName } from '../common/names.js';
import { BrokerFeature, Command } from '../protocol/commands.js';
import { encodeUnstampedRecords } from '../common/record-codec.js';
import type { SendRequest, SendResponse } from '../protocol/commands.js';
import { packBodies } from '../protocol/message-codec.js';
import { Connection } from './connection.js';
import type { ClientOptions } from './connection.js';
import { createMessageId } from './message-id.js';
import { encodeMessage, isPlainMessage, recordInputOf, toSendResult, validateMessage } from './message-convert.js';
import type { EncodedMessage } from './message-convert.js';
import { RequestCoalescer, type Settled } from '../common/request-coalescer.js';

export interface ProducerOptions extends ClientOptions {
  /** Producer group, announced in HELLO (the broker asks a live member of it about transactions). */
  group?: string;
  /** Resends after a retriable failure, with the same message ids. Default 2. */
  sendRetries?: number;
  /** How long to wait for the broker to store a send. Default 30 s. */
  sendTimeoutMs?: number;
}

/** idle (not connected yet) → running → closed */
export type ProducerState = 'idle' | 'running' | 'closed';

// Room left in a frame for the msgpack header around the per-message entries.
const FRAME_SLACK_BYTES = 64 * 1024;
const DEFAULT_SEND_RETRIES = 2;
// Most send() calls merged into one SEND request (the broker accepts up to 10,000 per request).
const MAX_COALESCED = 1024;
// Merged sends go out in requests of about this many bytes: with 256 sends in flight that makes
// two or more requests, so the broker writes one while the client encodes the next and the
// broker answers the one before. One big request would keep client, broker and disk in lock-step,
// each idle while another works (measured: 38k/s with one 256-message request per round, 45-52k/s
// with two of 128, same machine and run).
const COALESCE_BYTES = 128 * 1024;

/**
 * Sends messages to a halfmq broker. `send` resolves once the broker has stored the message
 * (durably, per the broker's flush mode) and says where it landed.
 *
 * Delivery is at-least-once: after a retriable failure (connection lost, timeout, broker busy) the
 * same message is sent again with the same `msgId`, so a message whose first attempt was in fact
 * stored may be stored twice. Consumers dedupe by `msgId`.
 *
 * `start()` connects eagerly (and so reports a wrong address early); sending without it connects
 * lazily. After `shutdown()` every call fails with IllegalStateError.
 *
 * @example
 * const producer = new Producer({ endpoints: '127.0.0.1:9876' });
 * await producer.start();
 * const { msgId, queueId } = await producer.send({ topic: 'orders', body: 'hello', tag: 'created' });
 * await producer.shutdown();
 */
export class Producer {
  private readonly connection: Connection;
  private readonly sendRetries: number;
  private readonly sendTimeoutMs: number | undefined;
  private currentState: ProducerState = 'idle';
  private readonly merged = new RequestCoalescer<EncodedMessage, SendResult>((encoded) => this.sendMerged(encoded), {
    maxItems: MAX_COALESCED,
    maxBytes: COALESCE_BYTES,
  });

  constructor(options: ProducerOptions) {
    if (options?.group !== undefined) validateName('group', options.group);
    const retries = options?.sendRetries ?? DEFAULT_SEND_RETRIES;
    if (!Number.isInteger(retries) || retries < 0) throw new InvalidArgumentError('sendRetries must be a non-negative integer');
    this.connection = new Connection({ ...options, ...(options.group !== undefined ? { producerGroup: options.group } : {}) });
    this.sendRetries = retries;
    this.sendTimeoutMs = options.sendTimeoutMs;
  }

  get state(): ProducerState {
    return this.currentState;
  }

  get clientId(): string {
    return this.connection.clientId;
  }

  /** Connects to the broker (HELLO). Fails with ConnectionFailedError when it cannot be reached. */
  async start(): Promise<void> {
    this.assertOpen();
    await this.connection.connect();
    if (this.currentState === 'idle') this.currentState = 'running';
  }

  /**
   * Sends one message and resolves once it is stored. Sends issued together (in the same tick, e.g.
   * by many concurrent callers) share one SEND request: one frame, one storage flush, one reply.
   * Each keeps its own result; if the shared request fails with a non-retriable error, each of its
   * messages is resent on its own so that only the message at fault gets the error.
   */
  async send(message: Message): Promise<SendResult> {
    this.assertOpen();
    validateMessage(message);
    const info = this.connection.state === 'ready' ? this.connection.brokerInfo : undefined;
    const hello = info ?? (await this.connection.connect());
    if (this.currentState === 'idle') this.currentState = 'running';
    const now = Date.now();
    const encoded = encodeMessage(message, createMessageId(now), hello.maxMessageSize, now);
    return this.merged.add(encoded, encoded.body.length + estimateEntryBytes(encoded));
  }

  /**
   * The sends of one tick (or a ~128 KiB part of them), in as few frames as fit. If a shared
   * request fails with a non-retriable error, each of its messages is resent on its own, so that
   * only the message at fault gets the error.
   */
  private async sendMerged(items: EncodedMessage[]): Promise<Settled<SendResult>[]> {
    const { maxFrameSize } = this.connection.state === 'ready' ? this.connection.brokerInfo! : await this.connection.connect();
    const chunks = chunkByFrameSize(items, maxFrameSize - FRAME_SLACK_BYTES);
    const settled = await Promise.all(
      chunks.map(async (chunk): Promise<Settled<SendResult>[]> => {
        try {
          return (await this.sendChunk(chunk)).map((value) => ({ ok: true, value }));
        } catch (err) {
          if (chunk.length === 1 || isRetriable(err)) return chunk.map(() => ({ ok: false, error: err }));
          return Promise.all(chunk.map((e) => this.sendChunk([e]).then(([value]) => ({ ok: true as const, value: value! }), (error: unknown) => ({ ok: false as const, error }))));
        }
      }),
    );
    return settled.flat();
  }

  /**
   * Sends many messages in one request (one storage flush for all of them, split into several
   * requests only if they would not fit in one frame). Results are in the order of `messages`.
   */
  async sendBatch(messages: readonly Message[]): Promise<SendResult[]> {
    this.assertOpen();
    if (!Array.isArray(messages)) throw new InvalidArgumentError('sendBatch expects an array of messages');
    messages.forEach((m, i) => validateMessage(m, `messages[${i}]`));
    if (messages.length === 0) return [];
    return this.sendValidated(messages);
  }

  /**
   * Fire and forget: the message is written to the connection and no answer is awaited, so its
   * loss (broker crash, full disk) goes unnoticed. Resolves when written. Its msgId is returned.
   */
  async sendOneway(message: Message): Promise<string> {
    this.assertOpen();
    validateMessage(message);
    const hello = await this.connection.connect();
    const encoded = encodeMessage(message, createMessageId(), hello.maxMessageSize);
    const request: SendRequest = { messages: [encoded.wire] };
    await this.connection.sendOneway(Command.SEND, request, encoded.body);
    this.currentState = this.currentState === 'idle' ? 'running' : this.currentState;
    return encoded.wire.id;
  }

  /** Closes the connection. Sends still in flight fail. Idempotent. */
  async shutdown(): Promise<void> {
    if (this.currentState === 'closed') return;
    this.currentState = 'closed';
    await this.connection.close();
  }

  private async sendValidated(messages: readonly Message[]): Promise<SendResult[]> {
    const hello = await this.connection.connect();
    if (this.currentState === 'idle') this.currentState = 'running';
    const now = Date.now();
    const encoded = messages.map((m) => encodeMessage(m, createMessageId(now), hello.maxMessageSize, now));
    const chunks = chunkByFrameSize(encoded, hello.maxFrameSize - FRAME_SLACK_BYTES);
    const results = await Promise.all(chunks.map((chunk) => this.sendChunk(chunk)));
    return results.flat();
  }

  private async sendChunk(chunk: EncodedMessage[]): Promise<SendResult[]> {
    let request: SendRequest;
    let body: Buffer;
    if (this.connection.brokerInfo?.features?.includes(BrokerFeature.RECORD_SEND) === true && chunk.every(isPlainMessage)) {
      // The broker stores these bytes as they are once stamped: no msgpack of an entry per
      // message here, no decode into objects and encode again there.
      request = { records: chunk.length, cr: true };
      body = encodeUnstampedRecords(chunk.map(recordInputOf));
    } else {
      request = { messages: chunk.map((e) => e.wire), cr: true };
      body = packBodies(chunk.map((e) => e.body));
    }
    // The same request (same ids) is resent on retriable errors: duplicates are possible by design.
    const reply = await this.connection.request<SendResponse>(Command.SEND, request, body, {
      retries: this.sendRetries,
      ...(this.sendTimeoutMs !== undefined ? { timeoutMs: this.sendTimeoutMs } : {}),
    });
    return sendResults(reply.payload, chunk);
  }

  private assertOpen(): void {
    if (this.currentState === 'closed') throw new IllegalStateError('producer was shut down');
  }
}

/** A SEND reply's results in request order: compact (`q`, `o`), or a map each from an older broker. */
function sendResults(reply: SendResponse, chunk: EncodedMessage[]): SendResult[] {
  const { q, o, results } = reply;
  if (Array.isArray(q) && Array.isArray(o) && q.length === chunk.length && o.length === chunk.length) {
    return chunk.map((e, i) => ({ msgId: e.wire.id, topic: e.wire.t, queueId: q[i]!, queueOffset: o[i]! }));
  }
  if (!Array.isArray(results) || results.length !== chunk.length) {
    const got = Array.isArray(q) ? q.length : Array.isArray(results) ? results.length : 'no';
    throw new InternalError(`broker answered a send of ${chunk.length} messages with ${got} results`);
  }
  return results.map(toSendResult);
}

/** Splits encoded messages into groups whose bodies and header entries fit one frame. */
export function chunkByFrameSize(encoded: EncodedMessage[], budget: number): EncodedMessage[][] {
  const chunks: EncodedMessage[][] = [];
  let current: EncodedMessage[] = [];
  let size = 0;
  for (const e of encoded) {
    const cost = e.body.length + estimateEntryBytes(e);
    if (current.length > 0 && size + cost > budget) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(e);
    size += cost;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function estimateEntryBytes(e: EncodedMessage): number {
  const w = e.wire;
  let n = 64 + w.t.length + w.id.length + (w.g?.length ?? 0) + (w.s?.length ?? 0);
  for (const k of w.k ?? []) n += k.length + 2;
  for (const [k, v] of Object.entries(w.p ?? {})) n += k.length + v.length + 4;
  return n;
}
