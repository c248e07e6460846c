import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConsumeQueue } from './consume-queue.js';
import { isErrno } from './fs-util.js';

const QUEUE_DIR = /^\d{1,10}$/;

/** The key a checkpoint records a queue's count under (recovery splits it at the last /). */
function queueKey(topic: string, queueId: number): string {
  return `${topic}/${queueId}`;
}

/**
 * All consume queues of the store, under `<dataDir>/consumequeue/<topic>/<queueId>/`. Kept per
 * topic, then by queue id: the live path looks a queue up for every message, and a key string per
 * lookup (concatenated, then hashed) cost more than the lookup; a topic name from the broker's
 * topic table already carries its hash.
 */
export class ConsumeQueueSet {
  readonly root: string;
  private readonly perFile: number;
  private readonly byTopic = new Map<string, ConsumeQueue[]>();

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
    for (const cq of await Promise.all(loads)) set.add(cq);
    return set;
  }

  /** Removes every consume-queue file (before a full rebuild from the log). */
  static async wipe(root: string): Promise<void> {
    await rm(root, { recursive: true, force: true });
  }

  get(topic: string, queueId: number): ConsumeQueue | undefined {
    return this.byTopic.get(topic)?.[queueId];
  }

  getOrCreate(topic: string, queueId: number): ConsumeQueue {
    return this.get(topic, queueId) ?? this.add(new ConsumeQueue(this.root, topic, queueId, this.perFile));
  }

  *all(): IterableIterator<ConsumeQueue> {
    // Object.values: skips the holes, and still finds a queue id past the array index range (u32 max).
    for (const queues of this.byTopic.values()) yield* Object.values(queues);
  }

  /** Visible entry count (maxOffset) per queue key, as the checkpoint records it. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const cq of this.all()) out[queueKey(cq.topic, cq.queueId)] = cq.maxOffset;
    return out;
  }

  async syncAll(): Promise<void> {
    await Promise.all([...this.all()].map((cq) => cq.sync()));
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.all()].map((cq) => cq.close()));
  }

  private add(cq: ConsumeQueue): ConsumeQueue {
    let queues = this.byTopic.get(cq.topic);
    if (queues === undefined) this.byTopic.set(cq.topic, (queues = []));
    queues[cq.queueId] = cq;
    return cq;
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
