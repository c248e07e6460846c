// RabbitMQ 3.10: a quorum queue (Raft log, fsynced in batches before the
// publisher confirm), publishes on a confirm channel with a per-message
// confirm callback; consumption with basic.consume, prefetch and manual acks.
import amqp from 'amqplib';

export const durability = 'quorum queue (1 node), persistent msgs, publisher confirms (Raft log fsynced per batch before confirm)';

export async function connect({ port }) {
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  const conn = await amqp.connect(url);
  const ch = await conn.createConfirmChannel();
  const queue = (tag) => `bench.${tag}`;
  const declared = new Set();
  const consumerConns = new Set();
  return {
    async prepare(tag) {
      const q = queue(tag);
      if (declared.has(q)) await ch.deleteQueue(q);
      await ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      declared.add(q);
    },
    send(tag, body) {
      return new Promise((resolve, reject) => {
        // The callback fires on the broker's basic.ack (or nack) for this message.
        ch.publish('', queue(tag), body, { persistent: true }, (err) => (err ? reject(err) : resolve()));
      });
    },
    async startConsumer(tag, onBody) {
      // Its own connection, as a separate consumer process would have.
      const c = await amqp.connect(url);
      consumerConns.add(c);
      const cch = await c.createChannel();
      await cch.prefetch(256);
      const { consumerTag } = await cch.consume(
        queue(tag),
        (msg) => {
          if (!msg) return;
          onBody(msg.content);
          cch.ack(msg);
        },
        { noAck: false },
      );
      return {
        async stop() {
          await cch.cancel(consumerTag);
          await cch.close();
          await c.close();
          consumerConns.delete(c);
        },
      };
    },
    async close() {
      for (const c of consumerConns) await c.close().catch(() => {});
      for (const q of declared) await ch.deleteQueue(q).catch(() => {});
      await ch.close();
      await conn.close();
    },
  };
}
