// Redis 7 streams: XADD acknowledged after the AOF fsync (appendfsync always),
// consumed with XREADGROUP BLOCK + XACK.
import Redis from 'ioredis';

export const durability = 'streams, appendonly yes + appendfsync always (fsync before reply, group commit per event-loop turn)';

export async function connect({ port }) {
  const opts = { host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false };
  const prod = new Redis(opts);
  await prod.connect();
  const info = await prod.config('GET', 'appendfsync');
  if (info[1] !== 'always') throw new Error(`redis appendfsync is ${info[1]}, expected always`);
  const key = (tag) => `bench:${tag}`;
  const consumers = new Set();
  return {
    async prepare(tag) {
      await prod.del(key(tag));
    },
    send(tag, body) {
      return prod.xadd(key(tag), '*', 'd', body);
    },
    async startConsumer(tag, onBody) {
      const c = new Redis(opts);
      await c.connect();
      consumers.add(c);
      const k = key(tag);
      await c.xgroup('CREATE', k, 'g', '$', 'MKSTREAM');
      let running = true;
      let acks = [];
      const loop = (async () => {
        while (running) {
          const res = await c.xreadgroupBuffer('GROUP', 'g', 'c1', 'COUNT', 256, 'BLOCK', 100, 'STREAMS', k, '>');
          if (!res) continue;
          const ids = [];
          for (const [, entries] of res) {
            for (const [id, fields] of entries) {
              ids.push(id);
              onBody(fields[1]);
            }
          }
          // XACK is pipelined ahead of the next XREADGROUP on the same connection.
          if (ids.length) acks.push(c.xack(k, 'g', ...ids));
          if (acks.length > 64) {
            await Promise.all(acks);
            acks = [];
          }
        }
      })();
      return {
        async stop() {
          running = false;
          await loop;
          await Promise.all(acks);
          consumers.delete(c);
          c.disconnect();
        },
      };
    },
    async close() {
      for (const c of consumers) c.disconnect();
      await prod.quit();
    },
  };
}
