import { open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { fsyncDir, isErrno } from './fs-util.js';

/**
 * Checkpoint file `<dataDir>/checkpoint`, replaced atomically (tmp file, fsync, rename, dir fsync).
 *
 * off  size  field
 * 0    4     crc32 (zlib, u32 LE) over bytes [4, end)
 * 4    ..    UTF-8 JSON { v: 1, dispatchedUpTo: number, queues: { "<topic>/<queueId>": entryCount } }
 *
 * Promise: every consume-queue entry for a record below `dispatchedUpTo` is on disk (fsynced), and
 * queue "<topic>/<queueId>" has at least `entryCount` entries. Recovery re-dispatches from there; a
 * queue with fewer entries than recorded means its files were lost and triggers a full rebuild.
 *
 * Clean-shutdown marker `<dataDir>/clean-shutdown`: written last by a clean close, removed on open.
 */
export interface Checkpoint {
  dispatchedUpTo: number;
  queues: Record<string, number>;
}

const FILE = 'checkpoint';
const TMP = 'checkpoint.tmp';
const CLEAN_MARKER = 'clean-shutdown';

export type CheckpointRead = { status: 'missing' } | { status: 'corrupt'; reason: string } | { status: 'ok'; checkpoint: Checkpoint };

export async function readCheckpoint(dataDir: string): Promise<CheckpointRead> {
  let buf: Buffer;
  try {
    buf = await readFile(join(dataDir, FILE));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return { status: 'missing' };
    throw err;
  }
  if (buf.length < 4 || crc32(buf.subarray(4)) !== buf.readUInt32LE(0)) return { status: 'corrupt', reason: 'crc mismatch' };
  try {
    const parsed = JSON.parse(buf.toString('utf8', 4)) as { v?: unknown; dispatchedUpTo?: unknown; queues?: unknown };
    if (parsed.v !== 1 || typeof parsed.dispatchedUpTo !== 'number' || typeof parsed.queues !== 'object' || parsed.queues === null) {
      return { status: 'corrupt', reason: 'unexpected content' };
    }
    return { status: 'ok', checkpoint: { dispatchedUpTo: parsed.dispatchedUpTo, queues: parsed.queues as Record<string, number> } };
  } catch {
    return { status: 'corrupt', reason: 'not JSON' };
  }
}

export async function writeCheckpoint(dataDir: string, checkpoint: Checkpoint): Promise<void> {
  const json = Buffer.from(JSON.stringify({ v: 1, dispatchedUpTo: checkpoint.dispatchedUpTo, queues: checkpoint.queues }));
  const buf = Buffer.allocUnsafe(4 + json.length);
  json.copy(buf, 4);
  buf.writeUInt32LE(crc32(json), 0);
  const tmp = join(dataDir, TMP);
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(buf);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, join(dataDir, FILE));
  await fsyncDir(dataDir);
}

export async function writeCleanMarker(dataDir: string): Promise<void> {
  await writeFile(join(dataDir, CLEAN_MARKER), `${new Date().toISOString()}\n`, { flush: true });
  await fsyncDir(dataDir);
}

/** Removes the marker; returns whether it was there (the previous close was clean). */
export async function takeCleanMarker(dataDir: string): Promise<boolean> {
  try {
    await unlink(join(dataDir, CLEAN_MARKER));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
  await fsyncDir(dataDir);
  return true;
}
