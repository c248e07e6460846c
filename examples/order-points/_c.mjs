import { PGlite } from '@electric-sql/pglite';
const db = await PGlite.create('/tmp/pgx/db');
console.log('open', process.argv[2]);
await new Promise(r => setTimeout(r, 12000));
await db.close();
