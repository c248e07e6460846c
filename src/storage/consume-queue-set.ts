import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConsumeQueue } from './consume-queue.js';
import { isErrno } from './fs-util.js';

const QUEUE_DIR = /^\d{1,10}$/;

export function queueKey(topic: string, queueId: number): string {
  return `${topic}/${queueId}`;
}

/** All consume queues of the store, under `<dataDir>/consumequeue/<topic>/<queueId>/`. */
export class ConsumeQueueSet {
  readonly root: string;
  private readonly perFile: number;
  private readonly queues = new Map<string, ConsumeQueue>();

  constructor(root: string, perFile: number) {
    this.root = root;
    this.perFile = perFile;
  }

  /** Opens every queue on disk, repairing each tail against `trimAt` (see ConsumeQueue.load). */
  static async load(root: string, perFile: number, trimAt: number): Promise<ConsumeQueueSet> {
    const set = new ConsumeQueueSet(root, perFile);
    const loads: Promise<ConsumeQueue>[] = [];
    for (const topic of await listDir(root)) {
      for (const q of await listDir(join(root, topic))) {
        if (QUEUE_DIR.test(q)) loads.push(ConsumeQueue.load(root, topic, Number(q), perFile, trimAt));
      }
    }
    for (const cq of await Promise.all(loads)) set.queues.set(queueKey(cq.topic, cq.queueId), cq);
    return set;
  }

  /** Removes every consume-queue file (before a full rebuild from the log). */
  static async wipe(root: string): Promise<void> {
    await rm(root, { recursive: true, force: true });
  }

  get(topic: string, queueId: number): ConsumeQueue | undefined {
    return this.queues.get(queueKey(topic, queueId));
  }

  getOrCreate(topic: string, queueId: number): ConsumeQueue {
    const key = queueKey(topic, queueId);
    let cq = this.queues.get(key);
    if (cq === undefined) {
      cq = new ConsumeQueue(this.root, topic, queueId, this.perFile);
      this.queues.set(key, cq);
    }
    return cq;
  }

  all(): IterableIterator<ConsumeQueue> {
    return this.queues.values();
  }

  /** Visible entry count (maxOffset) per queue key, as the checkpoint records it. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, cq] of this.queues) out[key] = cq.maxOffset;
    return out;
  }

  async syncAll(): Promise<void> {
    await Promise.all([...this.queues.values()].map((cq) => cq.sync()));
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.queues.values()].map((cq) => cq.close()));
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return [];
    throw err;
  }
}
