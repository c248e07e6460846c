/** The client SDK's public surface (re-exported from the package root). */
export { Producer } from './producer.js';
export type { ProducerOptions, ProducerState } from './producer.js';
export { PushConsumer } from './push-consumer.js';
export type { MessageHandler, PushConsumerEvents, PushConsumerOptions, PushConsumerState } from './push-consumer.js';
export { SimpleConsumer } from './simple-consumer.js';
export type { SimpleConsumerOptions, SimpleConsumerState } from './simple-consumer.js';
export { TransactionProducer, Transaction } from './transaction-producer.js';
export type {
  CheckMessage,
  LocalTransactionExecutor,
  TransactionChecker,
  TransactionHandleState,
  TransactionMessage,
  TransactionOptions,
  TransactionProducerOptions,
  TransactionProducerState,
  TransactionResult,
} from './transaction-producer.js';
export { Admin } from './admin.js';
export type { AdminOptions, AdminState, StoredMessage } from './admin.js';
export type { DeadLetterMessage } from '../common/message.js';
export { idempotent, MemoryIdempotencyStore, LevelIdempotencyStore } from './idempotent-consumer.js';
export type {
  ClaimResult,
  IdempotencyStore,
  IdempotentMessage,
  IdempotentOptions,
  IdempotentOutcome,
  LevelIdempotencyStoreOptions,
  LevelLikeDatabase,
  MemoryIdempotencyStoreOptions,
} from './idempotent-consumer.js';
export type { AckTarget, ConsumerOptions, StartFrom } from './group-member.js';
export type { ClientOptions } from './connection.js';
export { parseEndpoint, formatEndpoint } from './endpoint.js';
export type { Endpoint } from './endpoint.js';
