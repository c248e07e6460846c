import type { Peer } from '../protocol/peer.js';
import type { MessageStore, MetadataStore } from '../storage/index.js';
import type { ResolvedBrokerOptions } from './options.js';
import type { GroupManager } from './group-manager.js';
import type { Logger } from './logger.js';
import type { TopicManager } from './topic-manager.js';
import type { DeadLetterService } from './dead-letter.js';
import type { MessageIndex } from './message-index.js';
import type { RetryService } from './retry-service.js';
import type { TimerService } from './timer-service.js';
import type { TransactionChecker } from './transaction-checker.js';
import type { TransactionService } from './transaction-service.js';
import type { TransactionTable } from './transaction-table.js';

/** What every processor may use. */
export interface BrokerContext {
  options: ResolvedBrokerOptions;
  store: MessageStore;
  metadata: MetadataStore;
  topics: TopicManager;
  groups: GroupManager;
  transactions: TransactionService;
  transactionTable: TransactionTable;
  checker: TransactionChecker;
  timers: TimerService;
  retries: RetryService;
  deadLetters: DeadLetterService;
  lookup: MessageIndex;
  log: Logger;
}

/** One client connection as the broker sees it. */
export interface Session {
  readonly id: number;
  readonly address: string;
  readonly peer: Peer;
  clientId?: string;
  producerGroup?: string;
  lastSeen: number;
  /** consumer group → member id of this connection in it */
  readonly memberships: Map<string, string>;
}

export interface Reply {
  payload: unknown;
  body?: Uint8Array;
}

export interface Request {
  payload: unknown;
  body: Buffer;
}

/** One processor per command: validates the payload, does the work, returns the reply. */
export type Processor = (ctx: BrokerContext, session: Session, request: Request) => Promise<Reply> | Reply;
