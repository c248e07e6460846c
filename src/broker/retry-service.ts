import { RecordType } from '../storage/index.js';
import type { StoredRecord } from '../storage/index.js';
import type { DeadLetterService } from './dead-letter.js';
import { withOrigin } from './dead-letter.js';
import { retryDelay } from './retry-policy.js';
import { retryTopicOf, SystemProperty } from '../common/system-properties.js';
import type { TimerService } from './timer-service.js';
import type { TopicManager } from './topic-manager.js';

/** Where a failed delivery went. */
export type FailureOutcome = 'retry' | 'dlq';

/**
 * What happens to a delivery that failed (NACK, or a lease that expired un-acked) in clustering
 * mode: a DELAYED copy destined for `%RETRY%<group>` queue 0 with reconsumeTimes + 1, due after the
 * retry schedule's delay; past the group's maxReconsumeTimes, the dead-letter queue instead. The
 * copy keeps the msgId, tag, keys and properties, and records where the message came from and why
 * it failed. The caller then marks the original offset done, so one failing message neither pins
 * the committed offset nor blocks the messages behind it.
 */
export class RetryService {
  readonly delays: readonly number[];
  private readonly timers: TimerService;
  private readonly deadLetters: DeadLetterService;
  private readonly topics: TopicManager;

  constructor(options: { delays: readonly number[]; timers: TimerService; deadLetters: DeadLetterService; topics: TopicManager }) {
    this.delays = options.delays;
    this.timers = options.timers;
    this.deadLetters = options.deadLetters;
    this.topics = options.topics;
  }

  /** Delay before the next delivery of a message whose failed delivery had `reconsumeTimes`. */
  delayAfter(reconsumeTimes: number): number {
    return retryDelay(this.delays, reconsumeTimes);
  }

  /** The retry topic exists before a member subscribes to it. */
  async ensureRetryTopic(group: string): Promise<string> {
    const topic = retryTopicOf(group);
    if (!this.topics.get(topic)) await this.topics.create(topic, 1);
    return topic;
  }

  async retryLater(group: string, record: StoredRecord, reconsumeTimes: number, maxReconsumeTimes: number, reason: string): Promise<FailureOutcome> {
    if (reconsumeTimes + 1 > maxReconsumeTimes) {
      await this.deadLetters.bury(group, record, reconsumeTimes, reason);
      return 'dlq';
    }
    const topic = await this.ensureRetryTopic(group);
    const deliverAt = Date.now() + this.delayAfter(reconsumeTimes);
    await this.timers.append([
      {
        type: RecordType.DELAYED,
        topic,
        queueId: 0,
        msgId: record.msgId,
        ...(record.tag !== undefined ? { tag: record.tag } : {}),
        keys: record.keys,
        properties: { ...withOrigin(record), [SystemProperty.FAILURE_REASON]: reason, [SystemProperty.DELIVER_AT]: String(deliverAt) },
        body: record.body,
        bornTimestamp: record.bornTimestamp,
        reconsumeTimes: reconsumeTimes + 1,
      },
    ]);
    return 'retry';
  }
}
