import { IllegalStateError, InvalidArgumentError } from '../common/errors.js';
import { validateName } from '../common/names.js';
import { Command } from '../protocol/commands.js';
import type {
  EndTransactionRequest,
  EndTransactionResponse,
  ListTransactionsResponse,
  TransactionInfo,
  TransactionResolution,
} from '../protocol/transaction-commands.js';
import type {
  CreateTopicRequest,
  CreateTopicResponse,
  GroupQueueInfo,
  GroupRef,
  GroupStatus,
  ListGroupsResponse,
  ListTopicsResponse,
  TopicInfo,
} from '../protocol/commands.js';
import { Connection } from './connection.js';
import type { ClientOptions } from './connection.js';

export type AdminOptions = ClientOptions;

/** idle (connects on first use) → closed */
export type AdminState = 'idle' | 'closed';

// Every admin command is safe to repeat (reads, and a create that reports "already existed").
const RETRIES = 2;

/**
 * Topic and consumer-group administration. Connects lazily on the first call; `start()` only
 * connects early so a wrong address shows up at once.
 *
 * @example
 * const admin = new Admin({ endpoints: '127.0.0.1:9876' });
 * await admin.createTopic('orders', { queues: 8 });
 * const { totalLag } = await admin.groupStatus('points');
 * await admin.shutdown();
 */
export class Admin {
  private readonly connection: Connection;
  private currentState: AdminState = 'idle';

  constructor(options: AdminOptions) {
    this.connection = new Connection(options);
  }

  get state(): AdminState {
    return this.currentState;
  }

  async start(): Promise<void> {
    this.assertOpen();
    await this.connection.connect();
  }

  /**
   * Creates a topic with `queues` queues (default: the broker's). Creating one that exists is not
   * an error: `created` is false and `topic` describes the existing one.
   */
  async createTopic(name: string, options: { queues?: number } = {}): Promise<CreateTopicResponse> {
    validateName('topic', name);
    const request: CreateTopicRequest = { name };
    if (options.queues !== undefined) {
      if (!Number.isInteger(options.queues) || options.queues < 1) throw new InvalidArgumentError('queues must be a positive integer');
      request.queues = options.queues;
    }
    return this.call<CreateTopicResponse>(Command.CREATE_TOPIC, request);
  }

  async listTopics(): Promise<TopicInfo[]> {
    return (await this.call<ListTopicsResponse>(Command.LIST_TOPICS, {})).topics ?? [];
  }

  /** Members, and per queue the committed offset, max offset, lag and messages in flight. */
  async groupStatus(group: string): Promise<GroupStatus> {
    return this.call<GroupStatus>(Command.GROUP_STATUS, groupRef(group));
  }

  /** The per-queue part of `groupStatus`. */
  async groupOffsets(group: string): Promise<GroupQueueInfo[]> {
    return (await this.groupStatus(group)).queues;
  }

  async listGroups(): Promise<string[]> {
    return (await this.call<ListGroupsResponse>(Command.LIST_GROUPS, {})).groups ?? [];
  }

  /** Closes the connection. Idempotent. */
  /** Transactions by state: `prepared` (default; awaiting end or check), `parked` (checks exhausted), `all`. */
  async listTransactions(options: { state?: 'prepared' | 'parked' | 'all'; limit?: number } = {}): Promise<TransactionInfo[]> {
    return (await this.call<ListTransactionsResponse>(Command.LIST_TRANSACTIONS, options)).transactions;
  }

  async getTransaction(transactionId: string): Promise<TransactionInfo> {
    return this.call<TransactionInfo>(Command.GET_TRANSACTION, { transactionId });
  }

  /**
   * Manual compensation, typically for a PARKED transaction: commit or roll it back as an operator.
   * Refused with TransactionConflictError when it was already resolved the other way.
   */
  async resolveTransaction(transactionId: string, resolution: TransactionResolution): Promise<EndTransactionResponse> {
    const request: EndTransactionRequest = { transactionId, resolution, source: 'operator' };
    return this.call<EndTransactionResponse>(Command.END_TRANSACTION, request);
  }

  async shutdown(): Promise<void> {
    if (this.currentState === 'closed') return;
    this.currentState = 'closed';
    await this.connection.close();
  }

  private async call<T>(code: number, payload: unknown): Promise<T> {
    this.assertOpen();
    return (await this.connection.request<T>(code, payload, undefined, { retries: RETRIES })).payload;
  }

  private assertOpen(): void {
    if (this.currentState === 'closed') throw new IllegalStateError('admin client was shut down');
  }
}

function groupRef(group: string): GroupRef {
  return { group: validateName('group', group) };
}
