// Opens the PGlite database in `dir` for this process alone.
//
// PGlite is embedded Postgres: one process owns a data directory, and nothing stops a second one
// from opening it too (and corrupting it). A `DIR.lock` file holding our pid guards against that;
// a lock left by a process that is gone (a crash) is taken over.
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';

export async function openDatabase(dir) {
  mkdirSync(path.dirname(path.resolve(dir)), { recursive: true });
  const lock = `${path.resolve(dir)}.lock`;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      const owner = Number(readFileSync(lock, 'utf8'));
      if (owner && isAlive(owner)) {
        console.error(`${dir} is in use by process ${owner}; stop it first (one process per PGlite directory)`);
        process.exit(1);
      }
      unlinkSync(lock); // stale: its process is gone
    }
  }
  process.once('exit', () => {
    try {
      unlinkSync(lock);
    } catch {
      // already gone
    }
  });
  return PGlite.create(dir);
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}
