/**
 * halfmq's public API. Everything a user imports comes from here; internals (Connection, codecs,
 * storage) are deliberately not re-exported.
 */
// client/index.ts is the SDK's curated public surface (no internals): re-exported as a whole, so a
// new client export is added in one place.
export * from './client/index.js';
export type {
  LocalTransactionState,
  ResolutionSource,
  TransactionInfo,
  TransactionResolution,
  TransactionState,
} from './protocol/transaction-commands.js';

export type { Message, ReceivedMessage, SendResult } from './common/message.js';
export type {
  CreateTopicResponse,
  GroupMemberInfo,
  GroupQueueInfo,
  GroupStatus,
  StartFrom,
  TopicInfo,
} from './protocol/commands.js';

export {
  ERROR_TABLE,
  HalfmqError,
  isRetriable,
  InvalidArgumentError,
  MalformedFrameError,
  FrameTooLargeError,
  UnknownCommandError,
  UnsupportedVersionError,
  MessageTooLargeError,
  TopicNotFoundError,
  TopicExistsError,
  NotAMemberError,
  IllegalStateError,
  ConnectionFailedError,
  ConnectionClosedError,
  TimeoutError,
  BrokerBusyError,
  ShuttingDownError,
  StorageError,
  CorruptDataError,
  DiskFullError,
  InternalError,
  TransactionConflictError,
  TransactionNotFoundError,
  DuplicateInProgressError,
  MessageNotFoundError,
} from './common/errors.js';
export type { ErrorCode, ErrorOptions } from './common/errors.js';
export type { BackoffOptions } from './common/backoff.js';

export { startBroker } from './broker/index.js';
export type { BrokerHandle, BrokerOptions } from './broker/index.js';
