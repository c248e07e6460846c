// Sends three messages and consumes them with a PushConsumer.
// Run a broker first (`npm start`), then: node examples/quickstart.mjs
import { Admin, Producer, PushConsumer } from 'halfmq';

const endpoints = process.env.HALFMQ_SERVER || '127.0.0.1:9876';

const admin = new Admin({ endpoints });
await admin.createTopic('orders', { queues: 4 });

const producer = new Producer({ endpoints });
await producer.start();
for (const id of [1, 2, 3]) {
  // Resolves once the broker has stored the message durably (fsync under --flush sync).
  const r = await producer.send({
    topic: 'orders',
    body: JSON.stringify({ orderId: id, amount: 10 * id }),
    tag: 'created',
    keys: `order-${id}`,
    shardingKey: `customer-${id % 2}`, // same key, same queue
  });
  console.log(`sent ${r.msgId} to queue ${r.queueId} at offset ${r.queueOffset}`);
}

let received = 0;
const done = new Promise((resolve) => {
  const consumer = new PushConsumer({
    endpoints,
    group: 'points',
    subscriptions: { orders: 'created || paid' },
    handler: async (msg) => {
      // Returning acks the message; throwing means "not consumed" and it comes again.
      console.log(`points got ${msg.body.toString()} (keys ${msg.keys.join(',')}, try ${msg.reconsumeTimes + 1})`);
      if (++received === 3) resolve(consumer);
    },
  });
  consumer.start();
});
const consumer = await done;
await consumer.shutdown();
await producer.shutdown();
await admin.shutdown();
