/**
 * The next queue offset to hand out, per topic and queue. An append takes its offsets at once, in
 * call order, before its records are durable and dispatched, so this runs ahead of the consume
 * queues; a queue not seen since the store opened starts at its consume queue's end. Kept per
 * topic, then by queue id, for the same reason as ConsumeQueueSet: no key string per message.
 */
export class QueueOffsets {
  private readonly byTopic = new Map<string, number[]>();
  private readonly dispatchedEnd: (topic: string, queueId: number) => number;

  /** `dispatchedEnd`: the end of a queue's consume queue (its maxOffset; 0 when it has none). */
  constructor(dispatchedEnd: (topic: string, queueId: number) => number) {
    this.dispatchedEnd = dispatchedEnd;
  }

  take(topic: string, queueId: number): number {
    let next = this.byTopic.get(topic);
    if (next === undefined) this.byTopic.set(topic, (next = []));
    const offset = next[queueId] ?? this.dispatchedEnd(topic, queueId);
    next[queueId] = offset + 1;
    return offset;
  }

  /**
   * Gives back the offsets of an append that failed before it reached the log: `taken` in the
   * order they were taken (-1 where none was). Nothing can have taken later ones in between, as
   * an append takes and gives back within one synchronous call.
   */
  giveBack(taken: readonly { topic: string; queueId: number }[], offsets: readonly number[]): void {
    for (let i = offsets.length - 1; i >= 0; i--) {
      const offset = offsets[i]!;
      if (offset >= 0) this.byTopic.get(taken[i]!.topic)![taken[i]!.queueId] = offset;
    }
  }
}
