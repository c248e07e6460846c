import { describe, expect, it } from 'vitest';
import { QueueProgress } from '../../../src/broker/queue-progress.js';

describe('QueueProgress', () => {
  it('never moves the committed offset past an un-acked message', () => {
    const p = new QueueProgress('t', 0, 0);
    for (let o = 0; o < 5; o++) p.lease(o, 'm1', Date.now() + 1000);
    p.next = 5;
    p.markDone(1);
    p.markDone(2);
    expect(p.committed).toBe(0);
    p.markDone(0);
    expect(p.committed).toBe(3);
    p.markDone(4);
    expect(p.committed).toBe(3);
    p.markDone(3);
    expect(p.committed).toBe(5);
    expect(p.done.size).toBe(0);
    expect(p.dirty).toBe(true);
  });

  it('redelivers what a dead member held, lowest offset first, counting deliveries', () => {
    const p = new QueueProgress('t', 0, 10);
    expect(p.lease(12, 'a', Date.now() + 1000)).toBe(0);
    p.lease(11, 'a', Date.now() + 1000);
    p.lease(13, 'b', Date.now() + 1000);
    expect(p.releaseMember('a')).toBe(2);
    expect(p.hasRedeliveries).toBe(true);
    expect(p.takeRedeliveries(10)).toEqual([11, 12]);
    expect(p.lease(12, 'b', Date.now() + 1000)).toBe(1);
    expect([...p.inflight.keys()].sort()).toEqual([12, 13]);
  });

  it('counts deliveries across a detach and reattach, and across repeated redeliveries', () => {
    const p = new QueueProgress('t', 0, 0);
    expect(p.lease(0, 'a', Date.now() + 1000, 2)).toBe(2); // a retry copy: two failures before it
    const lease = p.detach(0)!;
    expect(p.inflight.has(0)).toBe(false);
    p.reattach(0, lease); // handling the failure did not work out: deliverable again
    expect(p.takeRedeliveries(5)).toEqual([0]);
    expect(p.lease(0, 'b', Date.now() + 1000, 2)).toBe(3);
    expect(p.releaseMember('b')).toBe(1);
    expect(p.takeRedeliveries(5)).toEqual([0]);
    expect(p.lease(0, 'c', Date.now() + 1000, 2)).toBe(4);
    p.markDone(0);
    expect(p.committed).toBe(1);
    expect(p.inflight.size).toBe(0);
  });

  it('an offset acked while waiting for redelivery leaves the redelivery list', () => {
    const p = new QueueProgress('t', 0, 0);
    p.lease(0, 'a', Date.now() - 1);
    p.lease(1, 'a', Date.now() - 1);
    expect(p.releaseExpired(Date.now())).toBe(2);
    p.markDone(1); // the late ack of the first delivery still counts
    expect(p.takeRedeliveries(5)).toEqual([0]);
    expect(p.lease(0, 'b', Date.now() + 1000)).toBe(1);
    p.markDone(0);
    expect(p.committed).toBe(2);
  });

  it('releases expired leases only', () => {
    const p = new QueueProgress('t', 1, 0);
    const now = Date.now();
    p.lease(0, 'a', now - 1);
    p.lease(1, 'a', now + 60_000);
    expect(p.releaseExpired(now)).toBe(1);
    expect(p.takeRedeliveries(5)).toEqual([0]);
    expect(p.inflight.has(1)).toBe(true);
  });

  it('ignores acks below the committed offset and duplicates, and computes lag', () => {
    const p = new QueueProgress('t', 0, 5);
    p.markDone(3);
    p.markDone(7);
    p.markDone(7);
    expect(p.committed).toBe(5);
    expect(p.lag(10)).toBe(4);
  });
});
