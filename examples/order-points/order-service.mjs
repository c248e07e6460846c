#!/usr/bin/env node
// The order service of the order-points example (see README.md next to this file).
//
// Placing an order is one local database transaction that writes the order AND a transaction-log
// row, wrapped in a halfmq transaction: the "order placed" event is first stored by the broker as
// an invisible half message, and only the outcome of the local transaction makes it visible
// (COMMIT) or drops it (ROLLBACK). If this process dies between its local commit and telling the
// broker, the broker asks a live instance of the group (`serve`), which answers from the tx_log.
//
//   node order-service.mjs place ID:CUSTOMER:AMOUNT... [--crash-after-local-commit]
//   node order-service.mjs serve      answer the broker's check-backs until Ctrl-C
//   node order-service.mjs report     print the orders and the transaction log as JSON
//   options: --server HOST:PORT (env HALFMQ_SERVER, default 127.0.0.1:9876)
//            --db DIR (default ./data/order-points/orders; a PGlite database, created on first use)
import { parseArgs } from 'node:util';
import { Admin, TransactionProducer } from 'halfmq';
import { openDatabase } from './open-db.mjs';

const TOPIC = 'order-events';
const GROUP = 'order-service';
// A local transaction that has not committed this long after its half message was born is given up
// on: it refuses to commit past this age, so a check that finds no tx_log row for an older half can
// answer ROLLBACK safely. A younger half without a row may still be committing: UNKNOWN (ask later).
const LOCAL_TX_TIMEOUT_MS = 5_000;

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    server: { type: 'string', default: process.env.HALFMQ_SERVER || '127.0.0.1:9876' },
    db: { type: 'string', default: 'data/order-points/orders' },
    'crash-after-local-commit': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
const [command, ...args] = positionals;
if (opts.help || !['place', 'serve', 'report'].includes(command)) {
  console.error('usage: order-service.mjs place ID:CUSTOMER:AMOUNT... [--crash-after-local-commit] | serve | report  [--server H:P] [--db DIR]');
  process.exit(opts.help ? 0 : 2);
}

const db = await openDatabase(opts.db);
await db.exec(`
  create table if not exists orders (
    id         text primary key,
    customer   text not null,
    amount     integer not null check (amount > 0),     -- the business rule that rejects an order
    created_at timestamptz not null default now()
  );
  -- One row per committed local transaction, written in that same transaction: the durable answer
  -- to the broker's "what became of transaction X?".
  create table if not exists tx_log (
    transaction_id text primary key,
    order_id       text not null references orders (id),
    created_at     timestamptz not null default now()
  );
`);

if (command === 'report') {
  const orders = (await db.query('select id, customer, amount from orders order by id')).rows;
  const txLog = (await db.query('select transaction_id as "transactionId", order_id as "orderId" from tx_log order by order_id')).rows;
  console.log(JSON.stringify({ orders, txLog }));
  await db.close();
  process.exit(0);
}

/** The check-back: answered from the database only, never from memory (this may be another process). */
async function checker(msg) {
  const { rows } = await db.query('select order_id from tx_log where transaction_id = $1', [msg.transactionId]);
  let answer;
  if (rows.length > 0) answer = 'COMMIT';
  else if (Date.now() - msg.bornTimestamp < LOCAL_TX_TIMEOUT_MS) answer = 'UNKNOWN';
  else answer = 'ROLLBACK'; // rolled back, or the process died before committing
  console.log(`check-back: transaction ${msg.transactionId} (order ${msg.keys[0]}) -> ${answer}`);
  return answer;
}

const producer = new TransactionProducer({ endpoints: opts.server, group: GROUP, checker });
await producer.start();

if (command === 'serve') {
  console.log(`order service serving check-backs for group ${GROUP}`);
  const stop = async () => {
    await producer.shutdown();
    await db.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} else {
  const admin = new Admin({ endpoints: opts.server });
  await admin.createTopic(TOPIC, { queues: 4 }); // idempotent
  await admin.shutdown();
  for (const spec of args) await placeOrder(parseOrder(spec));
  await producer.shutdown();
  await db.close();
}

function parseOrder(spec) {
  const [id, customer, amount] = spec.split(':');
  if (!id || !customer || amount === undefined || !/^-?\d+$/.test(amount)) {
    console.error(`bad order ${JSON.stringify(spec)}; expected ID:CUSTOMER:AMOUNT, e.g. o-1:alice:30`);
    process.exit(2);
  }
  return { id, customer, amount: Number(amount) };
}

async function placeOrder(order) {
  const startedAt = Date.now(); // before the half is born, so never later than its bornTimestamp
  const event = { topic: TOPIC, tag: 'created', keys: [order.id], body: JSON.stringify({ ...order, points: order.amount }) };
  const { transactionId, state } = await producer.sendInTransaction(event, async ([msg]) => {
    // Runs once the broker has stored the half message durably (invisible to the points service).
    try {
      await db.transaction(async (tx) => {
        await tx.query('insert into orders (id, customer, amount) values ($1, $2, $3)', [order.id, order.customer, order.amount]);
        await tx.query('insert into tx_log (transaction_id, order_id) values ($1, $2)', [msg.transactionId, order.id]);
        if (Date.now() - startedAt > LOCAL_TX_TIMEOUT_MS) throw new Error('local transaction too slow; a check may already have rolled it back');
      });
    } catch (err) {
      // check_violation (amount <= 0), unique_violation (order id taken), or too slow: the local
      // transaction rolled back, so the event must never be seen.
      console.log(`rejected order ${order.id}: ${err.message} (rolled back)`);
      return 'ROLLBACK';
    }
    if (opts['crash-after-local-commit']) {
      // The order and its tx_log row are committed; the broker still holds the event as PREPARED.
      console.log(`crashing after the local commit of order ${order.id} (transaction ${msg.transactionId}), before end-transaction`);
      process.exit(3);
    }
    return 'COMMIT';
  });
  if (state === 'COMMIT') console.log(`committed order ${order.id} (transaction ${transactionId})`);
  else if (state === 'UNKNOWN') console.log(`order ${order.id}: outcome not delivered to the broker; its check-back will resolve transaction ${transactionId}`);
}
