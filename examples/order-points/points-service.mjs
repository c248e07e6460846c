#!/usr/bin/env node
// The points service of the order-points example (see README.md next to this file).
//
// Consumes "order placed" events and credits the customer's points in its own database. Delivery
// is at-least-once, so the same event can arrive twice (a redelivery after a crash or a lost ack).
// Crediting is made idempotent the classic way: the order id goes into processed_orders in the
// SAME local transaction as the credit. Either both are committed or neither, so a duplicate finds
// the row and is skipped, and a crash mid-way leaves nothing half done.
//
//   node points-service.mjs [run] [--crash-after-credit N]   consume until Ctrl-C
//   node points-service.mjs report                            print accounts and processed orders as JSON
//   options: --server HOST:PORT (env HALFMQ_SERVER, default 127.0.0.1:9876)
//            --db DIR (default ./data/order-points/points; a PGlite database, created on first use)
//   --crash-after-credit N: exit right after committing the Nth credit, before the broker gets
//   the ack, to show that the redelivered event is not credited twice.
import { parseArgs } from 'node:util';
import { Admin, PushConsumer } from 'halfmq';
import { openDatabase } from './open-db.mjs';

const TOPIC = 'order-events';
const GROUP = 'points-service';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    server: { type: 'string', default: process.env.HALFMQ_SERVER || '127.0.0.1:9876' },
    db: { type: 'string', default: 'data/order-points/points' },
    'crash-after-credit': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
const command = positionals[0] ?? 'run';
if (opts.help || !['run', 'report'].includes(command)) {
  console.error('usage: points-service.mjs [run] [--crash-after-credit N] | report  [--server H:P] [--db DIR]');
  process.exit(opts.help ? 0 : 2);
}
const crashAfter = opts['crash-after-credit'] === undefined ? undefined : Number(opts['crash-after-credit']);

const db = await openDatabase(opts.db);
await db.exec(`
  create table if not exists accounts (
    customer text primary key,
    points   integer not null
  );
  -- The consumer-side dedupe table: one row per order ever credited.
  create table if not exists processed_orders (
    order_id     text primary key,
    msg_id       text not null,
    processed_at timestamptz not null default now()
  );
`);

if (command === 'report') {
  const accounts = (await db.query('select customer, points from accounts order by customer')).rows;
  const processed = (await db.query('select order_id as "orderId", msg_id as "msgId" from processed_orders order by order_id')).rows;
  console.log(JSON.stringify({ accounts, processed }));
  await db.close();
  process.exit(0);
}

const admin = new Admin({ endpoints: opts.server });
await admin.createTopic(TOPIC, { queues: 4 }); // idempotent; a consumer cannot subscribe to a missing topic
await admin.shutdown();

let credits = 0;
const consumer = new PushConsumer({
  endpoints: opts.server,
  group: GROUP,
  subscriptions: { [TOPIC]: 'created' },
  handler: async (msg) => {
    const order = JSON.parse(msg.body.toString());
    const credited = await db.transaction(async (tx) => {
      // Claim the order id; a duplicate delivery finds it taken and changes nothing.
      const claim = await tx.query(
        'insert into processed_orders (order_id, msg_id) values ($1, $2) on conflict (order_id) do nothing returning order_id',
        [order.id, msg.msgId],
      );
      if (claim.rows.length === 0) return false;
      await tx.query(
        'insert into accounts (customer, points) values ($1, $2) on conflict (customer) do update set points = accounts.points + excluded.points',
        [order.customer, order.points],
      );
      return true;
    });
    if (!credited) {
      console.log(`skipped order ${order.id}: already credited (duplicate delivery of ${msg.msgId}, try ${msg.reconsumeTimes + 1})`);
      return; // ack it: the work is done
    }
    console.log(`credited order ${order.id}: ${order.customer} +${order.points} points`);
    if (++credits === crashAfter) {
      console.log(`crashing after crediting order ${order.id}, before the ack`);
      process.exit(3);
    }
  },
});
consumer.on('handlerError', (err, msg) => console.error(`handler failed for ${msg.msgId} (will be redelivered): ${err.message}`));
await consumer.start();
console.log(`points service consuming ${TOPIC} as group ${GROUP}`);

const stop = async () => {
  await consumer.shutdown();
  await db.close();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
