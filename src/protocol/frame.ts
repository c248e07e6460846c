import { Packr } from 'msgpackr';
import { MalformedFrameError } from '../common/errors.js';
import type { WireError } from '../common/errors.js';

/**
 * Frame layout (big-endian):
 *
 *   0   u32  frameLength   bytes that follow this field (headerLength field + header + body)
 *   4   u32  headerLength
 *   8   ...  header        msgpack map: { c: command, i: correlation id, f: flags, e?: error, d?: payload }
 *   ...      body          raw bytes (message bodies), frameLength - 4 - headerLength bytes
 *
 * Requests flow both ways on one connection (the broker asks producers for transaction state), so
 * each side numbers its own requests and the RESPONSE flag tells which table a frame belongs to.
 */
export const FRAME_PREFIX_BYTES = 8;
export const DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024;

export const FrameFlags = {
  RESPONSE: 1,
  ONEWAY: 2,
} as const;

export interface FrameHeader {
  /** command code */
  c: number;
  /** correlation id, chosen by the side that sent the request */
  i: number;
  /** FrameFlags bits */
  f: number;
  /** error, only on error responses */
  e?: WireError;
  /** command payload */
  d?: unknown;
}

export interface Frame {
  header: FrameHeader;
  body: Buffer;
}

// Plain msgpack maps (no record extension): every frame decodes on its own, no shared state.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

const EMPTY = Buffer.alloc(0);

/**
 * Encodes a frame as [prefix+header, body] so a large body is handed to the socket without a copy.
 */
export function encodeFrame(header: FrameHeader, body: Uint8Array = EMPTY): Buffer[] {
  const head = packr.pack(header);
  const out = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + head.length);
  out.writeUInt32BE(4 + head.length + body.length, 0);
  out.writeUInt32BE(head.length, 4);
  head.copy(out, FRAME_PREFIX_BYTES);
  return body.length === 0 ? [out] : [out, Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.length)];
}

export function decodeHeader(bytes: Buffer): FrameHeader {
  let header: unknown;
  try {
    header = packr.unpack(bytes);
  } catch (err) {
    throw new MalformedFrameError('frame header is not valid msgpack', { cause: err });
  }
  if (
    header === null ||
    typeof header !== 'object' ||
    typeof (header as FrameHeader).c !== 'number' ||
    typeof (header as FrameHeader).i !== 'number' ||
    typeof (header as FrameHeader).f !== 'number'
  ) {
    throw new MalformedFrameError('frame header lacks command code, correlation id or flags');
  }
  return header as FrameHeader;
}
