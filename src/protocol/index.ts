export * from './commands.js';
export { FrameDecoder } from './frame-decoder.js';
export { DEFAULT_MAX_FRAME_SIZE, FrameFlags, encodeFrame, decodeHeader } from './frame.js';
export type { Frame, FrameHeader } from './frame.js';
export { packBodies, splitBodies } from './message-codec.js';
export { Peer } from './peer.js';
export * from './transaction-commands.js';
export * from './reliability-commands.js';
export type { PeerOptions } from './peer.js';
