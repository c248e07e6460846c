import { open, readdir } from 'node:fs/promises';

/** Commit-log segments and consume-queue files are named by their first offset/index, 20 digits. */
export const OFFSET_NAME_DIGITS = 20;
const OFFSET_NAME = /^\d{20}$/;

export function offsetFileName(offset: number): string {
  return String(offset).padStart(OFFSET_NAME_DIGITS, '0');
}

/** Offsets of the offset-named files in `dir`, ascending; [] when the directory does not exist. */
export async function listOffsetFiles(dir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((n) => OFFSET_NAME.test(n))
    .map(Number)
    .sort((a, b) => a - b);
}

/** A new or renamed directory entry is only durable once its directory is fsynced. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}
