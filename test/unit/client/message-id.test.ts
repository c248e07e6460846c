import { describe, expect, it, vi } from 'vitest';
import { MESSAGE_ID_PATTERN, createMessageId, isMessageId } from '../../../src/client/message-id.js';

describe('createMessageId', () => {
  it('is 32 lowercase hex characters', () => {
    for (let i = 0; i < 100; i++) expect(createMessageId()).toMatch(MESSAGE_ID_PATTERN);
    expect(isMessageId(createMessageId())).toBe(true);
    expect(isMessageId('xyz')).toBe(false);
  });

  it('never repeats within a process, even within one millisecond', () => {
    const now = Date.now();
    const ids = new Set<string>();
    for (let i = 0; i < 200_000; i++) ids.add(createMessageId(now));
    expect(ids.size).toBe(200_000);
  });

  it('counts up by one in its last 8 hex digits, across byte carries and time changes', () => {
    let previous = parseInt(createMessageId(1_000).slice(24), 16);
    for (let i = 0; i < 1_000; i++) {
      const id = createMessageId(1_000 + Math.floor(i / 300));
      expect(id.slice(12, 24)).toBe((1_000 + Math.floor(i / 300)).toString(16).padStart(12, '0'));
      const n = parseInt(id.slice(24), 16);
      expect(n).toBe((previous + 1) >>> 0);
      previous = n;
    }
  });

  it('shares the process prefix and encodes the time', () => {
    const a = createMessageId(0x0123456789ab);
    const b = createMessageId(0x0123456789ab);
    expect(a.slice(0, 12)).toBe(b.slice(0, 12));
    expect(a.slice(12, 24)).toBe('0123456789ab');
    expect(a).not.toBe(b);
  });

  it('differs across processes (random per-process prefix)', async () => {
    // A fresh module instance stands in for another process: it draws its own prefix.
    const prefixes = new Set([createMessageId().slice(0, 12)]);
    for (let i = 0; i < 3; i++) {
      vi.resetModules();
      const fresh = await import('../../../src/client/message-id.js');
      prefixes.add(fresh.createMessageId().slice(0, 12));
    }
    expect(prefixes.size).toBe(4);
  });
});
