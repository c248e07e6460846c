/**
 * `npm run bench:tx-path`: the broker's transaction path alone, in one process: a broker with a real
 * store in a temp dir, its SEND_HALF_BATCH and END_TRANSACTION_BATCH processors called directly
 * on frames decoded as the broker decodes them, their replies encoded as it encodes them. No sockets
 * and no client, so two builds compare without the noise of two processes sharing the cores (the
 * requests' encoding is the one client cost inside).
 *
 *   node dist-bench/bench/tx-path.js [transactions] [lanes] [flush] [messages|records]
 *
 * Each lane sends a frame of 121 one-message transactions (what a producer's 128 KiB part holds),
 * as message entries or (RECORD_HALF) as records, waits for it, ends them with one frame of commit
 * ids, and repeats. Prints one JSON line: transactions/s, main-thread time per transaction
 * (event-loop utilization), the part of it that was the broker's (without encoding the requests)
 * and process CPU per transaction. Not part of `npm test`; asserts nothing.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Broker } from '../src/broker/broker.js';
import type { BrokerContext, Processor, Session } from '../src/broker/context.js';
import { PROCESSORS } from '../src/broker/router.js';
import { Command } from '../src/protocol/commands.js';
import { FrameFlags, encodeFrame } from '../src/protocol/frame.js';
import type { Frame } from '../src/protocol/frame.js';
import { FrameDecoder } from '../src/protocol/frame-decoder.js';
import { encodeUnstampedRecords } from '../src/common/record-codec.js';
import { RecordType, type RecordInput } from '../src/common/record.js';
import { TX_GROUP_PROPERTY, TX_ID_PROPERTY } from '../src/common/system-properties.js';

const FRAME = 121;
const SIZE = 1024;

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 150_000);
  const lanes = Number(process.argv[3] ?? 2);
  const flush = process.argv[4] === 'sync' ? 'sync' : 'async';
  const form = process.argv[5] === 'records' ? 'records' : 'messages';
  const dataDir = await mkdtemp(join(tmpdir(), 'halfmq-tx-path-'));
  const broker = await Broker.start({ port: 0, host: '127.0.0.1', dataDir, flush, log: () => undefined });
  try {
    // The processors take the broker's context, which it keeps to itself: a bench may look inside.
    const ctx = (broker as unknown as { ctx: BrokerContext }).ctx;
    const processor = (code: number): Processor => PROCESSORS.get(code)!;
    const session = { id: 1, address: 'bench', memberships: new Map(), lastSeen: 0, producerGroup: 'bench' } as unknown as Session;
    await processor(Command.CREATE_TOPIC)(ctx, session, { payload: { name: 'bench-tx', queues: 8 }, body: Buffer.alloc(0) });
    const body = randomBytes(SIZE);
    const decoder = new FrameDecoder();
    let frameId = 0;
    let encodeMs = 0;
    // What the broker does with a request frame: decode it, run its processor, encode the reply.
    const serve = async (code: number, payload: unknown, frameBody?: Buffer): Promise<void> => {
      const t0 = performance.now();
      const bytes = Buffer.concat(encodeFrame({ c: code, i: ++frameId, f: 0, d: payload }, frameBody));
      encodeMs += performance.now() - t0;
      const frame: Frame = decoder.push(bytes)[0]!;
      const reply = await processor(code)(ctx, session, { payload: frame.header.d, body: frame.body });
      encodeFrame({ c: code, i: frame.header.i, f: FrameFlags.RESPONSE, d: reply.payload }, reply.body);
    };
    let next = 0;
    const lane = async (count: number): Promise<void> => {
      while (next < count) {
        const now = Date.now();
        const ids: string[] = [];
        for (let i = 0; i < FRAME; i++) ids.push(`T${(next++).toString(36).padStart(24, '0')}`);
        const t0 = performance.now();
        const [request, frameBody] =
          form === 'records'
            ? [{ group: 'bench', records: ids.length, cr: true }, encodeUnstampedRecords(ids.map((id) => halfRecord(id, now)))]
            : [
                { group: 'bench', txs: ids.map((id) => ({ transactionId: id, messages: [{ t: 'bench-tx', id: `M${id}`, n: SIZE, b: now }] })), cr: true },
                Buffer.concat(ids.map(() => body)),
              ];
        encodeMs += performance.now() - t0;
        await serve(Command.SEND_HALF_BATCH, request, frameBody);
        await serve(Command.END_TRANSACTION_BATCH, { commit: ids, rollback: [], cr: true });
      }
    };
    const halfRecord = (id: string, now: number): RecordInput => ({
      type: RecordType.PREPARED,
      topic: 'bench-tx',
      queueId: 0,
      msgId: `M${id}`,
      keys: [],
      properties: { [TX_ID_PROPERTY]: id, [TX_GROUP_PROPERTY]: 'bench' },
      body,
      bornTimestamp: now,
      reconsumeTimes: 0,
    });
    await Promise.all(Array.from({ length: lanes }, () => lane(Math.min(20_000, total)))); // warm-up
    const done = next;
    encodeMs = 0;
    const elu = performance.eventLoopUtilization();
    const cpu = process.cpuUsage();
    const start = performance.now();
    await Promise.all(Array.from({ length: lanes }, () => lane(done + total)));
    const seconds = (performance.now() - start) / 1000;
    const used = process.cpuUsage(cpu);
    const active = performance.eventLoopUtilization(elu).active;
    const n = next - done;
    const round = (x: number): number => Math.round(x * 100) / 100;
    console.log(
      JSON.stringify({
        transactions: n,
        lanes,
        flush,
        form,
        txPerSec: Math.round(n / seconds),
        mainThreadUsPerTx: round((active * 1000) / n),
        brokerUsPerTx: round(((active - encodeMs) * 1000) / n),
        cpuUsPerTx: round((used.user + used.system) / n),
      }),
    );
  } finally {
    await broker.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
