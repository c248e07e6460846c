/**
 * Every error halfmq raises, in one table: a stable string `code`, whether a retry can help
 * (`retriable`), and a default message. Retry logic reads `retriable` and nothing else; unknown
 * failures are NOT retriable (retrying forever on a bug hides it).
 *
 * The same codes travel on the wire: a broker error response carries `{ code, message }` and the
 * client turns it back into the same class with `errorFromWire`.
 */
export const ERROR_TABLE = {
  INVALID_ARGUMENT: { retriable: false, message: 'invalid argument' },
  MALFORMED_FRAME: { retriable: false, message: 'malformed frame' },
  FRAME_TOO_LARGE: { retriable: false, message: 'frame exceeds the size limit' },
  UNKNOWN_COMMAND: { retriable: false, message: 'unknown command code' },
  UNSUPPORTED_VERSION: { retriable: false, message: 'unsupported protocol version' },
  MESSAGE_TOO_LARGE: { retriable: false, message: 'message body exceeds the size limit' },
  TOPIC_NOT_FOUND: { retriable: false, message: 'topic does not exist' },
  TOPIC_EXISTS: { retriable: false, message: 'topic already exists' },
  NOT_A_MEMBER: { retriable: true, message: 'client is not a member of the consumer group' },
  ILLEGAL_STATE: { retriable: false, message: 'operation not allowed in the current state' },
  CONNECTION_FAILED: { retriable: true, message: 'could not connect to the broker' },
  CONNECTION_CLOSED: { retriable: true, message: 'connection to the broker closed' },
  TIMEOUT: { retriable: true, message: 'request timed out' },
  BROKER_BUSY: { retriable: true, message: 'broker is busy' },
  SHUTTING_DOWN: { retriable: true, message: 'broker is shutting down' },
  STORAGE_ERROR: { retriable: false, message: 'storage failure' },
  CORRUPT_DATA: { retriable: false, message: 'stored data failed its checksum' },
  DISK_FULL: { retriable: true, message: 'disk is nearly full; writes refused' },
  TX_NOT_FOUND: { retriable: false, message: 'transaction not found' },
  TX_CONFLICT: { retriable: false, message: 'transaction already resolved the other way' },
  DUPLICATE_IN_PROGRESS: { retriable: true, message: 'another delivery with this idempotency key is being handled' },
  MESSAGE_NOT_FOUND: { retriable: false, message: 'message not found' },
  INTERNAL: { retriable: false, message: 'internal error' },
} as const satisfies Record<string, { retriable: boolean; message: string }>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export interface ErrorOptions {
  /** Structured facts about where it happened (topic, offset, file, ...). */
  context?: Record<string, unknown>;
  cause?: unknown;
}

export class HalfmqError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly context: Record<string, unknown>;

  constructor(code: ErrorCode, message?: string, options: ErrorOptions = {}) {
    super(message ?? ERROR_TABLE[code].message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.code = code;
    this.retriable = ERROR_TABLE[code].retriable;
    this.context = options.context ?? {};
    this.name = new.target.name;
  }

  toJSON(): { code: ErrorCode; message: string; retriable: boolean; context: Record<string, unknown> } {
    return { code: this.code, message: this.message, retriable: this.retriable, context: this.context };
  }
}

function kind(code: ErrorCode) {
  return class extends HalfmqError {
    static readonly code = code;
    constructor(message?: string, options?: ErrorOptions) {
      super(code, message, options);
    }
  };
}

// One class per kind, so callers can `instanceof` and tests can assert the type.
export class InvalidArgumentError extends kind('INVALID_ARGUMENT') {}
export class MalformedFrameError extends kind('MALFORMED_FRAME') {}
export class FrameTooLargeError extends kind('FRAME_TOO_LARGE') {}
export class UnknownCommandError extends kind('UNKNOWN_COMMAND') {}
export class UnsupportedVersionError extends kind('UNSUPPORTED_VERSION') {}
export class MessageTooLargeError extends kind('MESSAGE_TOO_LARGE') {}
export class TopicNotFoundError extends kind('TOPIC_NOT_FOUND') {}
export class TopicExistsError extends kind('TOPIC_EXISTS') {}
export class NotAMemberError extends kind('NOT_A_MEMBER') {}
export class IllegalStateError extends kind('ILLEGAL_STATE') {}
export class ConnectionFailedError extends kind('CONNECTION_FAILED') {}
export class ConnectionClosedError extends kind('CONNECTION_CLOSED') {}
export class TimeoutError extends kind('TIMEOUT') {}
export class BrokerBusyError extends kind('BROKER_BUSY') {}
export class ShuttingDownError extends kind('SHUTTING_DOWN') {}
export class StorageError extends kind('STORAGE_ERROR') {}
export class CorruptDataError extends kind('CORRUPT_DATA') {}
export class DiskFullError extends kind('DISK_FULL') {}
export class InternalError extends kind('INTERNAL') {}
export class MessageNotFoundError extends kind('MESSAGE_NOT_FOUND') {}
export class TransactionNotFoundError extends kind('TX_NOT_FOUND') {}
export class TransactionConflictError extends kind('TX_CONFLICT') {}
export class DuplicateInProgressError extends kind('DUPLICATE_IN_PROGRESS') {}

const CLASSES: Record<ErrorCode, new (message?: string, options?: ErrorOptions) => HalfmqError> = {
  INVALID_ARGUMENT: InvalidArgumentError,
  MALFORMED_FRAME: MalformedFrameError,
  FRAME_TOO_LARGE: FrameTooLargeError,
  UNKNOWN_COMMAND: UnknownCommandError,
  UNSUPPORTED_VERSION: UnsupportedVersionError,
  MESSAGE_TOO_LARGE: MessageTooLargeError,
  TOPIC_NOT_FOUND: TopicNotFoundError,
  TOPIC_EXISTS: TopicExistsError,
  NOT_A_MEMBER: NotAMemberError,
  ILLEGAL_STATE: IllegalStateError,
  CONNECTION_FAILED: ConnectionFailedError,
  CONNECTION_CLOSED: ConnectionClosedError,
  TIMEOUT: TimeoutError,
  BROKER_BUSY: BrokerBusyError,
  SHUTTING_DOWN: ShuttingDownError,
  STORAGE_ERROR: StorageError,
  CORRUPT_DATA: CorruptDataError,
  DISK_FULL: DiskFullError,
  INTERNAL: InternalError,
  MESSAGE_NOT_FOUND: MessageNotFoundError,
  TX_NOT_FOUND: TransactionNotFoundError,
  TX_CONFLICT: TransactionConflictError,
  DUPLICATE_IN_PROGRESS: DuplicateInProgressError,
};

/** The wire shape of an error (inside an error response header). */
export interface WireError {
  code: string;
  message: string;
  context?: Record<string, unknown>;
}

export function toWireError(err: unknown): WireError {
  if (err instanceof HalfmqError) return { code: err.code, message: err.message, context: err.context };
  return { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/** Turns a wire error back into its typed class; an unknown code becomes INTERNAL (not retriable). */
export function errorFromWire(wire: WireError): HalfmqError {
  const Ctor = (CLASSES as Record<string, (typeof CLASSES)[ErrorCode] | undefined>)[wire.code] ?? InternalError;
  return new Ctor(wire.message, { context: { ...(wire.context ?? {}), remote: true } });
}

export function isRetriable(err: unknown): boolean {
  return err instanceof HalfmqError && err.retriable;
}
