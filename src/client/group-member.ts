import { HalfmqError, InternalError, InvalidArgumentError, NotAMemberError } from '../common/errors.js';
import type { ReceivedMessage } from '../common/message.js';
import { validateName } from '../common/names.js';
import { parseTagExpression } from '../common/tags.js';
import { BrokerFeature, Command } from '../protocol/commands.js';
import type {
  AckRequest,
  GroupRef,
  JoinGroupRequest,
  JoinGroupResponse,
  MessageRef,
  NackRequest,
  PullRequest,
  PullResponse,
  QueueAcks,
  RawPullResponse,
  StartFrom,
} from '../protocol/commands.js';
import { splitBodies } from '../protocol/message-codec.js';
import type { ClientOptions, Connection } from './connection.js';
import { messageRef, receivedFromRecords, toReceivedMessage } from './message-convert.js';

export type { StartFrom };

/** Options shared by PushConsumer and SimpleConsumer. */
export interface ConsumerOptions extends ClientOptions {
  /** Consumer group: each message is delivered to one member of it. */
  group: string;
  /** topic → tag expression: `'*'` (everything) or `'tagA || tagB'`. */
  subscriptions: Record<string, string>;
  /**
   * Where a group seen for the first time starts, per queue without a committed offset:
   * `'earliest'` (default), `'latest'`, or a timestamp in ms (the first message stored at or after it).
   */
  startFrom?: StartFrom;
  /** Lease: a delivered message not acked within this long is delivered again. Default: the broker's. */
  invisibleMs?: number;
  /**
   * Retries of a failed message (handler error, nack, lease expiry) before it goes to the group's
   * dead-letter queue `%DLQ%<group>`. Default 16; 0 dead-letters at the first failure.
   */
  maxReconsumeTimes?: number;
}

/** What a consumer can be acked or nacked with: a received message (or its position fields). */
export type AckTarget = Pick<ReceivedMessage, 'topic' | 'queueId' | 'queueOffset' | 'ackRef'>;

export interface ValidatedConsumerOptions {
  group: string;
  subscriptions: Record<string, string>;
  startFrom: StartFrom | undefined;
  invisibleMs: number | undefined;
  maxReconsumeTimes: number | undefined;
  /** set by PushConsumer */
  orderly?: boolean;
  broadcast?: boolean;
}

export function validateConsumerOptions(options: ConsumerOptions): ValidatedConsumerOptions {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('consumer options are required');
  validateName('group', options.group);
  const subs = options.subscriptions;
  if (subs === null || typeof subs !== 'object' || Array.isArray(subs) || Object.keys(subs).length === 0) {
    throw new InvalidArgumentError('subscriptions must map at least one topic to a tag expression, e.g. { orders: "*" }');
  }
  const subscriptions: Record<string, string> = {};
  for (const [topic, expression] of Object.entries(subs)) {
    validateName('topic', topic);
    if (typeof expression !== 'string') throw new InvalidArgumentError(`subscription for ${topic} must be a tag expression string`);
    subscriptions[topic] = parseTagExpression(expression).expression;
  }
  const { startFrom, invisibleMs } = options;
  if (
    startFrom !== undefined &&
    startFrom !== 'earliest' &&
    startFrom !== 'latest' &&
    !(typeof startFrom === 'number' && Number.isInteger(startFrom) && startFrom >= 0)
  ) {
    throw new InvalidArgumentError(`startFrom must be 'earliest', 'latest' or a non-negative integer`);
  }
  if (invisibleMs !== undefined && !(Number.isInteger(invisibleMs) && invisibleMs >= 100)) {
    throw new InvalidArgumentError('invisibleMs must be an integer of at least 100');
  }
  const { maxReconsumeTimes } = options;
  if (maxReconsumeTimes !== undefined && !(Number.isInteger(maxReconsumeTimes) && maxReconsumeTimes >= 0 && maxReconsumeTimes <= 64)) {
    throw new InvalidArgumentError('maxReconsumeTimes must be an integer from 0 to 64');
  }
  return { group: options.group, subscriptions, startFrom, invisibleMs, maxReconsumeTimes };
}

/** Accepts one ack target or an array of them; checks each has a topic and numeric position. */
export function toRefs(targets: AckTarget | readonly AckTarget[]): MessageRef[] {
  const list = Array.isArray(targets) ? (targets as readonly AckTarget[]) : [targets as AckTarget];
  return list.map((t, i) => {
    if (
      t === null ||
      typeof t !== 'object' ||
      typeof t.topic !== 'string' ||
      !Number.isInteger(t.queueId) ||
      !Number.isInteger(t.queueOffset)
    ) {
      throw new InvalidArgumentError(`ack/nack target ${i} is not a received message (topic, queueId, queueOffset)`);
    }
    return messageRef(t);
  });
}

/**
 * Membership of one consumer group over one connection: JOIN, re-JOIN after a reconnect (the
 * broker forgets a member when its connection closes) or a NOT_A_MEMBER answer (e.g. after missed
 * heartbeats), PULL, ACK, NACK, LEAVE. Both consumers are built on it.
 */
export class GroupMember {
  private readonly connection: Connection;
  private readonly options: ValidatedConsumerOptions;
  /** The JOIN in effect (or in progress); undefined when a new one is needed. */
  private membership: Promise<string> | undefined;
  private wanted = false;
  private currentMemberId: string | undefined;

  constructor(connection: Connection, options: ValidatedConsumerOptions) {
    this.connection = connection;
    this.options = options;
    connection.on('reconnect', () => {
      if (!this.wanted) return;
      this.membership = undefined;
      // Failures surface to whoever next needs the membership (and re-JOIN there).
      this.ensureJoined().catch(() => undefined);
    });
  }

  get group(): string {
    return this.options.group;
  }

  get memberId(): string | undefined {
    return this.currentMemberId;
  }

  async join(): Promise<string> {
    this.wanted = true;
    return this.ensureJoined();
  }

  /**
   * Pulls up to `max` messages, held by the broker up to `waitMs` when none are ready (long poll).
   */
  async pull(max: number, waitMs: number): Promise<ReceivedMessage[]> {
    // An older broker ignores `raw` and answers each message decoded; both forms are read below.
    const request: PullRequest = { group: this.options.group, max, waitMs, raw: true };
    if (this.options.invisibleMs !== undefined) request.invisibleMs = this.options.invisibleMs;
    // The broker may hold the request for waitMs; the margin covers a slow store read on top.
    const reply = await this.asMember(() =>
      this.connection.request<PullResponse | RawPullResponse>(Command.PULL, request, undefined, { timeoutMs: waitMs + 10_000 }),
    );
    if ('o' in reply.payload) return receivedFromRecords(reply.payload, reply.body);
    const wires = reply.payload.messages ?? [];
    if (!Array.isArray(wires)) throw new InternalError('PULL response has no message list');
    const bodies = splitBodies(reply.body, wires);
    return wires.map((w, i) => toReceivedMessage(w, bodies[i]!));
  }

  /** Acks are idempotent on the broker, so they are resent on retriable errors. */
  async ack(items: MessageRef[]): Promise<void> {
    if (items.length === 0) return;
    await this.asMember(() => {
      // The form the broker of this connection takes (one from before `byQueue` takes only `items`).
      const compact = this.connection.brokerInfo?.features?.includes(BrokerFeature.ACK_BY_QUEUE) === true;
      const request: AckRequest = compact ? { group: this.options.group, byQueue: byQueue(items) } : { group: this.options.group, items };
      return this.connection.request(Command.ACK, request, undefined, { retries: 2 });
    }, false);
  }

  async nack(items: MessageRef[], reason?: string): Promise<void> {
    if (items.length === 0) return;
    const request: NackRequest = { group: this.options.group, items };
    if (reason !== undefined) request.reason = reason.slice(0, 1024);
    await this.asMember(() => this.connection.request(Command.NACK, request, undefined, { retries: 2 }), false);
  }

  /**
   * Leaves the group; the broker answers this member's outstanding pulls and hands its queues to
   * others. Best effort: when the connection is down the broker has already forgotten us.
   */
  async leave(timeoutMs = 5_000): Promise<void> {
    const wasMember = this.wanted && this.currentMemberId !== undefined;
    this.wanted = false;
    this.membership = undefined;
    if (!wasMember || this.connection.state !== 'ready') return;
    const request: GroupRef = { group: this.options.group };
    await this.connection.request(Command.LEAVE_GROUP, request, undefined, { timeoutMs }).catch(() => undefined);
  }

  private ensureJoined(): Promise<string> {
    if (!this.membership) {
      const request: JoinGroupRequest = { group: this.options.group, subscriptions: this.options.subscriptions };
      if (this.options.startFrom !== undefined) request.startFrom = this.options.startFrom;
      if (this.options.maxReconsumeTimes !== undefined) request.maxReconsumeTimes = this.options.maxReconsumeTimes;
      if (this.options.orderly) request.orderly = true;
      if (this.options.broadcast) request.mode = 'broadcast';
      const attempt: Promise<string> = this.connection
        .request<JoinGroupResponse>(Command.JOIN_GROUP, request, undefined, { retries: 2 })
        .then(({ payload }) => {
          this.currentMemberId = payload.memberId;
          return payload.memberId;
        })
        .catch((err: unknown) => {
          // Forget a failed JOIN so the next caller tries again instead of reusing the failure.
          if (this.membership === attempt) this.membership = undefined;
          throw err;
        });
      this.membership = attempt;
    }
    return this.membership;
  }

  /**
   * Runs a group request; on NOT_A_MEMBER re-JOINs once and runs it again. A PULL needs a live
   * membership first; ACK and NACK do not (the broker accepts them after a reconnect or a LEAVE),
   * so acks of work finished during shutdown still count.
   */
  private async asMember<T>(operation: () => Promise<T>, needsMembership = true): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let membership = this.membership;
      if (needsMembership || attempt > 0) {
        if (!this.wanted) throw new NotAMemberError(`not a member of group ${this.options.group} (not joined, or left)`);
        membership = this.ensureJoined();
        await membership;
      }
      try {
        return await operation();
      } catch (err) {
        if (!(err instanceof NotAMemberError) || attempt >= 1 || !this.wanted) throw err;
        // Only discard the membership this request ran under; a newer JOIN may already be in place.
        if (this.membership === membership) this.membership = undefined;
      }
    }
  }
}

/** Refs as runs of one queue's offsets (a batch of acks usually comes from a few queues, in order). */
export function byQueue(items: readonly MessageRef[]): QueueAcks[] {
  const out: QueueAcks[] = [];
  let run: QueueAcks | undefined;
  for (const [topic, queueId, offset] of items) {
    if (run !== undefined && run[0] === topic && run[1] === queueId) run[2].push(offset);
    else out.push((run = [topic, queueId, [offset]]));
  }
  return out;
}

export function asHalfmqError(err: unknown): HalfmqError {
  if (err instanceof HalfmqError) return err;
  return new InternalError(err instanceof Error ? err.message : String(err), { cause: err });
}
