import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { HalfmqError, IllegalStateError, ShuttingDownError, UnknownCommandError } from '../common/errors.js';
import { Command, commandName } from '../protocol/commands.js';
import type { Frame } from '../protocol/frame.js';
import { Peer } from '../protocol/peer.js';
import { HashIndex, MessageStore, MetadataStore } from '../storage/index.js';
import type { BrokerContext, Session } from './context.js';
import { GroupManager } from './group-manager.js';
import { resolveBrokerOptions } from './options.js';
import type { BrokerOptions, ResolvedBrokerOptions } from './options.js';
import { leaveAll } from './processors/consume.js';
import { PROCESSORS } from './router.js';
import { TopicManager } from './topic-manager.js';
import { DeadLetterService } from './dead-letter.js';
import { MessageIndex } from './message-index.js';
import { parseRetryDelays } from './retry-policy.js';
import { RetryService } from './retry-service.js';
import { TimerIndex } from './timer-index.js';
import { TimerService } from './timer-service.js';
import { TransactionChecker } from './transaction-checker.js';
import { TransactionService } from './transaction-service.js';
import { TransactionTable } from './transaction-table.js';

export type BrokerState = 'starting' | 'running' | 'closing' | 'closed';

/**
 * The broker: storage, metadata, topics and consumer groups behind one TCP listener. Each
 * connection is a Session; each request runs its command's processor and gets exactly one reply.
 */
export class Broker {
  state: BrokerState = 'starting';
  readonly options: ResolvedBrokerOptions;
  private readonly ctx: BrokerContext;
  private readonly server: net.Server;
  private readonly sessions = new Set<Session>();
  private nextSessionId = 1;
  private inflightRequests = 0;
  private idleWaiters: (() => void)[] = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  private constructor(options: ResolvedBrokerOptions, ctx: BrokerContext) {
    this.options = options;
    this.ctx = ctx;
    this.server = net.createServer((socket) => this.accept(socket));
  }

  static async start(input: BrokerOptions): Promise<Broker> {
    const options = resolveBrokerOptions(input);
    const { log } = options;
    await mkdir(options.dataDir, { recursive: true });
    // Services that derive indexes from held records (transactions, timers, lookup) add a hook
    // here; the store runs them before each checkpoint so a crash can rebuild from its checkpoint.
    // Until every service has replayed the log tail into its index, no checkpoint may be written:
    // it would tell the next start to skip records those indexes never saw.
    const checkpointHooks: (() => Promise<void>)[] = [];
    let servicesReady!: () => void;
    const ready = new Promise<void>((resolve) => (servicesReady = resolve));
    const store = await MessageStore.open({
      beforeCheckpoint: async () => {
        await ready;
        await Promise.all(checkpointHooks.map((hook) => hook()));
      },
      dataDir: options.dataDir,
      flush: options.flush,
      flushIntervalMs: options.flushIntervalMs,
      segmentSize: options.segmentSize,
      maxMessageSize: options.maxMessageSize,
      // Fresh records served from memory: consumers that keep up never wait on a file read.
      recentCacheBytes: 64 * 1024 * 1024,
      preallocateBytes: options.preallocateBytes,
      log,
    });
    const r = store.recovery;
    const how = r.cleanShutdown ? 'clean shutdown' : r.scannedRecords === 0 && r.truncatedBytes === 0 ? 'nothing to recover' : 'recovered after crash';
    log('info', `storage opened (${how}): ${r.scannedRecords} records checked, ${r.redispatched} re-dispatched, ${r.truncatedBytes} bytes truncated in ${Math.round(r.durationMs)} ms`);
    let metadata: MetadataStore;
    let messageIds: HashIndex;
    try {
      metadata = await MetadataStore.open(options.dataDir);
      messageIds = await HashIndex.open(join(options.dataDir, 'index')).catch(async (err: unknown) => {
        await metadata.close();
        throw err;
      });
    } catch (err) {
      await abandon(store, checkpointHooks, servicesReady);
      throw err;
    }
    // Groups and topics reference each other only through these callbacks.
    let groups: GroupManager | undefined;
    const topics = new TopicManager({
      metadata,
      autoCreate: options.autoCreateTopics,
      defaultQueues: options.defaultQueues,
      onChanged: (topic) => groups?.onTopicChanged(topic) ?? Promise.resolve(),
    });
    const timers = new TimerService({ store, index: new TimerIndex(metadata.sublevel('timers')), log });
    const deadLetters = new DeadLetterService({ store, topics, db: metadata.sublevel('dlq') });
    const lookup = new MessageIndex({ index: messageIds, legacy: metadata.sublevel('msgindex'), store, log });
    const retries = new RetryService({ delays: parseRetryDelays(options.retryDelays), timers, deadLetters, topics });
    groups = new GroupManager({ store, metadata, queueCount: (t) => topics.queueCount(t), log, maxPullBytes: 4 * 1024 * 1024, retries, deadLetters });

    const transactionTable = new TransactionTable(metadata);
    const transactions = new TransactionService({
      store,
      table: transactionTable,
      log,
      timings: { timeoutMs: options.txTimeoutMs, checkIntervalMs: options.txCheckIntervalMs, checkMax: options.txCheckMax },
    });
    let broker: Broker | undefined;
    const checker = new TransactionChecker({ service: transactions, table: transactionTable, store, log, producersOf: (g) => broker?.producersOf(g) ?? [] });
    const ctx: BrokerContext = { options, store, metadata, topics, groups, transactions, transactionTable, checker, timers, retries, deadLetters, lookup, log };
    store.onDispatch((topic, queueId) => ctx.groups.onDispatch(topic, queueId));
    broker = new Broker(options, ctx);
    try {
      await transactions.rebuild(store.recovery.fromOffset);
      await timers.rebuild();
      await lookup.rebuild();
      checkpointHooks.push(
        () => transactionTable.sync(),
        () => timers.beforeCheckpoint(),
        () => lookup.beforeCheckpoint(),
      );
      servicesReady();
      await broker.listen();
    } catch (err) {
      await abandon(store, checkpointHooks, servicesReady);
      await messageIds.close().catch(() => undefined);
      await metadata.close();
      throw err;
    }
    groups.start();
    checker.start();
    timers.start();
    broker.heartbeatTimer = setInterval(() => broker.evictSilentClients(), Math.max(50, Math.floor(options.heartbeatTimeoutMs / 4)));
    broker.state = 'running';
    return broker;
  }

  get address(): { host: string; port: number } {
    const a = this.server.address() as net.AddressInfo;
    return { host: this.options.host, port: a.port };
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        this.server.on('error', (err) => this.ctx.log('error', `listener error: ${err.message}`));
        resolve();
      });
    });
  }

  private accept(socket: net.Socket): void {
    if (this.state !== 'running') {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const peer = new Peer(socket, { maxFrameSize: this.options.maxFrameSize });
    const session: Session = {
      id: this.nextSessionId++,
      address: `${socket.remoteAddress}:${socket.remotePort}`,
      peer,
      lastSeen: Date.now(),
      memberships: new Map(),
    };
    this.sessions.add(session);
    peer.on('request', (frame) => void this.handle(session, frame));
    peer.on('protocolError', (err) => this.ctx.log('warn', `closing connection ${session.address}: ${err.message}`, { code: err.code }));
    peer.on('close', () => {
      this.sessions.delete(session);
      leaveAll(this.ctx, session);
    });
  }

  private async handle(session: Session, frame: Frame): Promise<void> {
    const { header } = frame;
    session.lastSeen = Date.now();
    this.inflightRequests++;
    try {
      if (this.state !== 'running') throw new ShuttingDownError();
      const processor = PROCESSORS.get(header.c);
      if (!processor) throw new UnknownCommandError(`unknown command code ${header.c}`, { context: { command: header.c } });
      if (session.clientId === undefined && header.c !== Command.HELLO) {
        throw new IllegalStateError(`${commandName(header.c)} before HELLO: send HELLO first`);
      }
      const reply = await processor(this.ctx, session, { payload: header.d, body: frame.body });
      session.peer.reply(header, reply.payload, reply.body);
    } catch (err) {
      if (!(err instanceof HalfmqError) || err.code === 'INTERNAL' || err.code === 'STORAGE_ERROR') {
        this.ctx.log('error', `${commandName(header.c)} from ${session.address} failed: ${(err as Error).stack ?? String(err)}`);
      }
      session.peer.replyError(header, err);
    } finally {
      if (--this.inflightRequests === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Live connections that announced this producer group in HELLO (they answer checks). */
  producersOf(group: string): Session[] {
    const out: Session[] = [];
    for (const s of this.sessions) if (s.producerGroup === group && !s.peer.isClosed) out.push(s);
    return out;
  }

  private evictSilentClients(): void {
    const cutoff = Date.now() - this.options.heartbeatTimeoutMs;
    for (const s of this.sessions) {
      if (s.lastSeen < cutoff) {
        this.ctx.log('warn', `client ${s.clientId ?? '?'} at ${s.address} silent for ${this.options.heartbeatTimeoutMs} ms; disconnecting`);
        s.peer.destroy();
      }
    }
  }

  /**
   * Stops accepting, answers parked pulls, lets in-flight writes finish, persists offsets,
   * flushes and closes storage, then drops the remaining connections.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.state = 'closing';
    clearInterval(this.heartbeatTimer);
    const listenerClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.ctx.checker.stop();
    await this.ctx.groups.close();
    if (this.inflightRequests > 0) {
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref()),
      ]);
    }
    await this.ctx.groups.flushOffsets();
    await this.ctx.timers.close();
    // The store's last checkpoint runs the lookup's hook, so the lookup closes after the store.
    await this.ctx.store.close();
    await this.ctx.lookup.close();
    await this.ctx.transactionTable.sync();
    await this.ctx.metadata.close();
    for (const s of this.sessions) s.peer.close();
    // Give the final replies a moment to leave, then force what is left.
    await new Promise<void>((resolve) => setTimeout(resolve, 20));
    for (const s of this.sessions) s.peer.destroy();
    await listenerClosed;
    this.state = 'closed';
    this.ctx.log('info', 'broker stopped');
  }
}

/**
 * Closes a store after a failed start without moving its checkpoint: the indexes derived from the
 * log may be incomplete, so the next start must replay the same range again.
 */
async function abandon(store: MessageStore, hooks: (() => Promise<void>)[], release: () => void): Promise<void> {
  hooks.splice(0, hooks.length, () => Promise.reject(new Error('broker start failed; checkpoint left where it was')));
  release();
  await store.close().catch(() => undefined);
}
