// PostgreSQL 15 transactional outbox: every "send" is one transaction that
// inserts a business row (an order) and an outbox row carrying the 1 KiB
// message, committed with the defaults fsync=on, synchronous_commit=on.
// A poller drains the outbox: SELECT ... FOR UPDATE SKIP LOCKED LIMIT 256,
// hands each row to the handler ("delivers"), DELETEs them and commits.
//
// PEERS_PG_MODE picks how the transaction is written:
//   cte (default)  one statement, WITH o AS (INSERT INTO orders ...) INSERT INTO outbox ...:
//                  both rows in one implicit transaction, one round trip (the
//                  peer's best case);
//   tx             BEGIN; INSERT order; INSERT outbox; COMMIT: four round trips,
//                  as application code usually writes it (~20-30 % slower here).
//
// 256 requests are kept in flight like for every other system, but they are
// served by a pool of PEERS_PG_POOL (default 32) connections: 256 backends
// would exceed the default max_connections = 100 and only add context
// switching on 2 cores; the rest wait in the pool's queue, and that wait is
// part of their latency.
import pg from 'pg';
import { sleep } from './common.mjs';

export const POOL_SIZE = Number(process.env.PEERS_PG_POOL ?? 32);
export const MODE = process.env.PEERS_PG_MODE ?? 'cte';
export const POLL_IDLE_MS = 5;
if (!['cte', 'tx'].includes(MODE)) throw new Error(`PEERS_PG_MODE must be cte or tx, not ${MODE}`);
if (!(POOL_SIZE >= 1 && POOL_SIZE <= 90)) throw new Error(`PEERS_PG_POOL must be 1..90, not ${POOL_SIZE}`);

export const durability =
  (MODE === 'cte'
    ? 'outbox: order row + outbox row in one tx (1 statement)'
    : 'outbox: BEGIN; INSERT order; INSERT outbox; COMMIT') +
  `; fsync=on, synchronous_commit=on; pool ${POOL_SIZE}`;

const Q = {
  cte: {
    name: 'ins_cte',
    text: 'WITH o AS (INSERT INTO orders (customer, amount) VALUES ($1, $2) RETURNING id) INSERT INTO outbox (aggregate_id, topic, payload) SELECT id, $3, $4 FROM o',
  },
  order: { name: 'ins_order', text: 'INSERT INTO orders (customer, amount) VALUES ($1, $2) RETURNING id' },
  outbox: { name: 'ins_outbox', text: 'INSERT INTO outbox (aggregate_id, topic, payload) VALUES ($1, $2, $3)' },
};

export async function connect({ port }) {
  const base = { host: '127.0.0.1', port, user: 'postgres', database: 'postgres' };
  const admin = new pg.Client(base);
  await admin.connect();
  const s = await admin.query("SELECT current_setting('fsync') AS f, current_setting('synchronous_commit') AS sc");
  if (s.rows[0].f !== 'on' || s.rows[0].sc !== 'on') throw new Error(`postgres fsync=${s.rows[0].f} synchronous_commit=${s.rows[0].sc}`);
  await admin.query(`
    CREATE TABLE IF NOT EXISTS orders (
      id bigserial PRIMARY KEY, customer int NOT NULL, amount numeric(12,2) NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE IF NOT EXISTS outbox (
      id bigserial PRIMARY KEY, aggregate_id bigint NOT NULL, topic text NOT NULL, payload bytea NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now());`);
  const pool = new pg.Pool({ ...base, max: POOL_SIZE });
  const pollers = new Set();
  let seq = 0;
  return {
    async prepare() {
      await admin.query('TRUNCATE orders, outbox');
    },
    async send(tag, body) {
      if (MODE === 'cte') return pool.query({ ...Q.cte, values: [seq++ % 10_000, 42.5, tag, body] });
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        const r = await c.query({ ...Q.order, values: [seq++ % 10_000, 42.5] });
        await c.query({ ...Q.outbox, values: [r.rows[0].id, tag, body] });
        await c.query('COMMIT');
        c.release();
      } catch (e) {
        await c.query('ROLLBACK').catch(() => {});
        c.release(e);
        throw e;
      }
    },
    async startConsumer(_tag, onBody) {
      const c = new pg.Client(base);
      await c.connect();
      pollers.add(c);
      let running = true;
      const loop = (async () => {
        while (running) {
          await c.query('BEGIN');
          const r = await c.query({
            name: 'poll',
            text: 'SELECT id, payload FROM outbox ORDER BY id LIMIT 256 FOR UPDATE SKIP LOCKED',
          });
          const ids = [];
          for (const row of r.rows) {
            onBody(row.payload);
            ids.push(row.id);
          }
          if (ids.length) await c.query({ name: 'done', text: 'DELETE FROM outbox WHERE id = ANY($1::bigint[])', values: [ids] });
          await c.query('COMMIT');
          if (!ids.length) await sleep(POLL_IDLE_MS);
        }
      })();
      return {
        async stop() {
          running = false;
          await loop;
          pollers.delete(c);
          await c.end();
        },
      };
    },
    async close() {
      for (const c of pollers) await c.end().catch(() => {});
      await pool.end();
      await admin.end();
    },
  };
}
