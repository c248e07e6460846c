import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Peer } from '../../../src/protocol/peer.js';
import { FrameDecoder } from '../../../src/protocol/frame-decoder.js';

/** A stream end that records each batch the writable side hands down (one per `writev`/`write` call: one syscall on a socket). */
function recordingStream(): { stream: Duplex; batches: Buffer[] } {
  const batches: Buffer[] = [];
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      batches.push(chunk);
      done();
    },
    writev(chunks, done) {
      batches.push(Buffer.concat(chunks.map((c) => c.chunk as Buffer)));
      done();
    },
  });
  return { stream, batches };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Peer writes', () => {
  it('sends the small frames of one tick together, in one write', async () => {
    const { stream, batches } = recordingStream();
    const peer = new Peer(stream);
    for (let i = 0; i < 3; i++) peer.send(7, { i }, Buffer.alloc(1000, i));
    expect(batches).toEqual([]); // corked until the tick ends
    await tick();
    expect(batches).toHaveLength(1);
    expect(new FrameDecoder().push(batches[0]!).map((f) => (f.header.d as { i: number }).i)).toEqual([0, 1, 2]);
    peer.destroy();
  });

  it('lets a tick’s frames out as soon as they pass 64 KiB, so the other side can start on them, and keeps their order', async () => {
    const { stream, batches } = recordingStream();
    const peer = new Peer(stream);
    peer.send(7, { i: 0 }, Buffer.alloc(40 * 1024));
    expect(batches).toEqual([]);
    peer.send(7, { i: 1 }, Buffer.alloc(40 * 1024)); // 80 KiB corked: out now
    expect(batches).toHaveLength(1);
    peer.send(7, { i: 2 }, Buffer.alloc(1000));
    expect(batches).toHaveLength(1); // the rest of the tick is corked again
    await tick();
    expect(batches).toHaveLength(2);
    const decoder = new FrameDecoder({ maxFrameSize: 1 << 20 });
    const frames = batches.flatMap((b) => decoder.push(b));
    expect(frames.map((f) => [(f.header.d as { i: number }).i, f.body.length])).toEqual([
      [0, 40 * 1024],
      [1, 40 * 1024],
      [2, 1000],
    ]);
    peer.destroy();
  });
});
