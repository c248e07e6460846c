import net from 'node:net';
import { Command } from '../../../src/protocol/commands.js';
import type { Frame } from '../../../src/protocol/frame.js';
import { Peer } from '../../../src/protocol/peer.js';

/**
 * A scripted stand-in for the broker, for client unit tests: answers HELLO itself and hands every
 * other request to `handle` (its result is the reply payload, or [payload, body]; a throw becomes
 * an error reply). Records every request it saw.
 */
export type FakeHandler = (frame: Frame, peer: Peer) => unknown | Promise<unknown>;

export class FakeBroker {
  readonly requests: { code: number; payload: unknown; body: Buffer }[] = [];
  readonly peers = new Set<Peer>();
  heartbeatIntervalMs = 60_000;
  maxMessageSize = 1024;
  /** HELLO's feature list; none, as a broker from before the list */
  features: string[] | undefined;
  private server: net.Server | undefined;
  port = 0;

  constructor(public handle: FakeHandler = () => ({})) {}

  async listen(port = 0): Promise<this> {
    const server = net.createServer((socket) => {
      const peer = new Peer(socket);
      this.peers.add(peer);
      peer.on('close', () => this.peers.delete(peer));
      peer.on('request', (frame) => void this.onRequest(frame, peer));
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
    return this;
  }

  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  count(code: number): number {
    return this.requests.filter((r) => r.code === code).length;
  }

  /** Stops listening and drops every connection (a broker crash, as the client sees it). */
  async stop(): Promise<void> {
    for (const p of this.peers) p.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  private async onRequest(frame: Frame, peer: Peer): Promise<void> {
    this.requests.push({ code: frame.header.c, payload: frame.header.d, body: frame.body });
    if (frame.header.c === Command.HELLO) {
      peer.reply(frame.header, {
        version: 1,
        brokerVersion: 'fake',
        maxMessageSize: this.maxMessageSize,
        maxFrameSize: 16 << 20,
        heartbeatIntervalMs: this.heartbeatIntervalMs,
        ...(this.features ? { features: this.features } : {}),
      });
      return;
    }
    try {
      const result = await this.handle(frame, peer);
      if (Array.isArray(result)) peer.reply(frame.header, result[0], result[1] as Buffer);
      else peer.reply(frame.header, result ?? {});
    } catch (err) {
      peer.replyError(frame.header, err);
    }
  }
}
