import { describe, expect, it } from 'vitest';
import { joinParts, packBodies, splitBodies } from '../../../src/protocol/message-codec.js';

/** A buffer with memory of its own (Buffer.from of a short string is a slice of the shared pool). */
const own = (text: string): Buffer => Buffer.alloc(text.length, text);

describe('message codec', () => {
  it('joinParts returns one view, without a copy, of parts that lie back to back in one buffer', () => {
    const whole = own('aaabbbbcc');
    const joined = joinParts([whole.subarray(0, 3), whole.subarray(3, 7), whole.subarray(7)]);
    expect(joined.toString()).toBe('aaabbbbcc');
    expect(joined.buffer).toBe(whole.buffer);
    whole[0] = 0x7a; // a view: it sees the change
    expect(joined[0]).toBe(0x7a);
  });

  it('joinParts copies parts that are not adjacent, and handles none', () => {
    const whole = own('aaabbbbcc');
    const gap = joinParts([whole.subarray(0, 3), whole.subarray(4, 7)]);
    expect(gap.toString()).toBe('aaabbb');
    expect(gap.buffer).not.toBe(whole.buffer);
    const apart = joinParts([Buffer.from('x'), Buffer.from('y')]);
    expect(apart.toString()).toBe('xy');
    expect(joinParts([]).length).toBe(0);
  });

  it('packBodies always copies several bodies (they are the caller\'s), and splitBodies undoes it', () => {
    const whole = own('aaabbb');
    const packed = packBodies([whole.subarray(0, 3), whole.subarray(3)]);
    expect(packed.buffer).not.toBe(whole.buffer);
    expect(splitBodies(packed, [{ n: 3 }, { n: 3 }]).map((b) => b.toString())).toEqual(['aaa', 'bbb']);
  });
});
