import net from 'node:net';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import type { Frame } from '../../src/protocol/frame.js';

/** A raw connection: write bytes, collect decoded frames, see when the broker closes it. */
export function rawConnection(port: number): Promise<{ socket: net.Socket; frames: Frame[]; closed: Promise<void>; next: () => Promise<Frame> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const frames: Frame[] = [];
    const decoder = new FrameDecoder({ maxFrameSize: 64 * 1024 * 1024 });
    let waiter: (() => void) | undefined;
    socket.on('data', (c: Buffer) => {
      frames.push(...decoder.push(c));
      waiter?.();
    });
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.on('error', () => undefined);
    let read = 0;
    const next = async (): Promise<Frame> => {
      const deadline = Date.now() + 10_000;
      while (frames.length <= read) {
        if (Date.now() > deadline) throw new Error('no frame from the broker');
        await new Promise<void>((r) => {
          waiter = r;
          setTimeout(r, 100);
        });
      }
      return frames[read++]!;
    };
    socket.once('connect', () => resolve({ socket, frames, closed, next }));
    socket.once('error', reject);
  });
}

export function frame(c: number, i: number, d: unknown, body?: Buffer): Buffer {
  return Buffer.concat(encodeFrame({ c, i, f: 0, d }, body));
}
