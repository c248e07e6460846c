import { IllegalStateError, InvalidArgumentError } from '../common/errors.js';
import type { ReceivedMessage } from '../common/message.js';
import { Connection } from './connection.js';
import { GroupMember, toRefs, validateConsumerOptions } from './group-member.js';
import type { AckTarget, ConsumerOptions } from './group-member.js';

export type SimpleConsumerOptions = ConsumerOptions;

/** idle → running → closed */
export type SimpleConsumerState = 'idle' | 'running' | 'closed';

const DEFAULT_MAX = 32;
const DEFAULT_WAIT_MS = 10_000;
const MAX_BATCH = 1024;

/**
 * A consumer the application drives: `receive` what is there (long-polling up to `waitMs`),
 * process it, `ack` what was done, `nack` what must come again. A message neither acked nor
 * nacked within `invisibleMs` (the lease) is delivered again, to this or another member.
 *
 * @example
 * const consumer = new SimpleConsumer({ endpoints: '127.0.0.1:9876', group: 'audit', subscriptions: { orders: '*' } });
 * await consumer.start();
 * for (const msg of await consumer.receive(16, 5_000)) { await audit(msg); await consumer.ack(msg); }
 * await consumer.shutdown();
 */
export class SimpleConsumer {
  private readonly connection: Connection;
  private readonly member: GroupMember;
  private currentState: SimpleConsumerState = 'idle';

  constructor(options: SimpleConsumerOptions) {
    const validated = validateConsumerOptions(options);
    this.connection = new Connection(options);
    this.member = new GroupMember(this.connection, validated);
  }

  get state(): SimpleConsumerState {
    return this.currentState;
  }

  get memberId(): string | undefined {
    return this.member.memberId;
  }

  /** Joins the group. If that fails the consumer is closed and the error thrown. */
  async start(): Promise<void> {
    if (this.currentState !== 'idle') throw new IllegalStateError(`cannot start a consumer that is ${this.currentState}`);
    this.currentState = 'running';
    try {
      await this.member.join();
    } catch (err) {
      await this.shutdown();
      throw err;
    }
  }

  /**
   * Receives up to `max` messages (default 32). When none are ready the broker holds the request
   * up to `waitMs` (default 10 s) and answers as soon as one arrives; an empty array means none came.
   */
  async receive(max: number = DEFAULT_MAX, waitMs: number = DEFAULT_WAIT_MS): Promise<ReceivedMessage[]> {
    this.assertRunning('receive');
    if (!Number.isInteger(max) || max < 1 || max > MAX_BATCH) throw new InvalidArgumentError(`max must be an integer in 1..${MAX_BATCH}`);
    if (!Number.isInteger(waitMs) || waitMs < 0) throw new InvalidArgumentError('waitMs must be a non-negative integer');
    return this.member.pull(max, waitMs);
  }

  /** Marks messages consumed. Accepts one message or an array. */
  async ack(messages: AckTarget | readonly AckTarget[]): Promise<void> {
    this.assertRunning('ack');
    await this.member.ack(toRefs(messages));
  }

  /** "Not consumed": the messages will be delivered again. Accepts one message or an array. */
  async nack(messages: AckTarget | readonly AckTarget[], reason?: string): Promise<void> {
    this.assertRunning('nack');
    await this.member.nack(toRefs(messages), reason);
  }

  /** Leaves the group and closes the connection. Un-acked messages come again later. Idempotent. */
  async shutdown(): Promise<void> {
    if (this.currentState === 'closed') return;
    this.currentState = 'closed';
    await this.member.leave();
    await this.connection.close();
  }

  private assertRunning(operation: string): void {
    if (this.currentState === 'idle') throw new IllegalStateError(`call start() before ${operation}()`);
    if (this.currentState === 'closed') throw new IllegalStateError(`cannot ${operation}(): the consumer was shut down`);
  }
}
