import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/** Commit-log segment files of a data dir, oldest first. */
export async function segmentFiles(dataDir: string): Promise<string[]> {
  const dir = path.join(dataDir, 'commitlog');
  return (await readdir(dir))
    .filter((f) => /^\d{20}$/.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

export async function lastSegment(dataDir: string): Promise<string> {
  return (await segmentFiles(dataDir)).at(-1)!;
}

/**
 * Where the data of a segment file ends: the end of its chain of record sizes. The file may be
 * longer (zero-filled preallocated space), so its size says nothing about it.
 */
export async function dataEnd(file: string): Promise<number> {
  const buf = await readFile(file);
  let pos = 0;
  while (pos + 8 <= buf.length && buf.readUInt32LE(pos) > 0) pos += buf.readUInt32LE(pos);
  return pos;
}
