// NATS JetStream 2.9: a file-storage stream; js.publish awaits the PubAck.
// The file store writes each message before the PubAck but does not fsync it
// (fsync every sync_interval, default 2 min). Consumption with a durable pull
// consumer (consumer.consume, 256 buffered) and explicit acks.
import { connect as natsConnect, StorageType, AckPolicy, DeliverPolicy, RetentionPolicy } from 'nats';

export const durability = 'JetStream file store, PubAck awaited; NO per-message fsync (sync_interval 2 min default)';

export async function connect({ port }) {
  const nc = await natsConnect({ servers: `127.0.0.1:${port}`, maxReconnectAttempts: 0 });
  const jsm = await nc.jetstreamManager();
  const js = nc.jetstream();
  const stream = (tag) => `BENCH_${tag.toUpperCase()}`;
  const subject = (tag) => `bench.${tag}`;
  const iters = new Set();
  return {
    async prepare(tag) {
      await jsm.streams.delete(stream(tag)).catch(() => {});
      await jsm.streams.add({
        name: stream(tag),
        subjects: [subject(tag)],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        num_replicas: 1,
      });
    },
    send(tag, body) {
      return js.publish(subject(tag), body);
    },
    async startConsumer(tag, onBody) {
      await jsm.consumers.add(stream(tag), {
        durable_name: 'c1',
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        max_ack_pending: 10_000,
      });
      const consumer = await js.consumers.get(stream(tag), 'c1');
      const iter = await consumer.consume({ max_messages: 256 });
      iters.add(iter);
      const loop = (async () => {
        for await (const m of iter) {
          const d = m.data;
          onBody(Buffer.from(d.buffer, d.byteOffset, d.byteLength));
          m.ack();
        }
      })();
      return {
        async stop() {
          await iter.close();
          await loop.catch(() => {});
          iters.delete(iter);
        },
      };
    },
    async close() {
      for (const it of iters) await it.close().catch(() => {});
      await nc.drain();
    },
  };
}
