/** Public surface of the storage layer: what the broker may use. Internals stay unexported. */
export { MessageStore } from './message-store.js';
export { MetadataStore, type TopicConfig, type OffsetCommit, type JsonSublevel } from './metadata-store.js';
export { decodeReleaseBody, type ReleasePointer } from './release-codec.js';
export { encodeRecord, decodeRecord, validateRecord, validateRecordInput, MIN_RECORD_SIZE, RECORD_MAGIC } from '../common/record-codec.js';
export {
  RecordType,
  type RecordTypeValue,
  type RecordInput,
  type StoredRecord,
  type AppendResult,
  type ReleaseTarget,
  type ReleaseResult,
  type RecoveryReport,
  type StoreStats,
  type StoreLog,
  type StoreLogLevel,
  type StoreState,
  type MessageStoreOptions,
  type ReadQueueOptions,
  type ReadQueueResult,
  type QueueRecord,
  type QueueRecordsResult,
  type DispatchListener,
} from './types.js';
export { HashIndex, type HashIndexOptions } from './hash-index.js';
