import { describe, expect, it } from 'vitest';
import { putU16, putU32, putU64, u16, u32, u64 } from '../../../src/common/le.js';

describe('little-endian byte access', () => {
  it('writes and reads the same bytes as Buffer does, at the edges of each width', () => {
    const ours = Buffer.alloc(16);
    const node = Buffer.alloc(16);
    for (const v of [0, 1, 0xff, 0x100, 0xffff]) {
      putU16(ours, 3, v);
      node.writeUInt16LE(v, 3);
      expect(ours).toEqual(node);
      expect(u16(node, 3)).toBe(v);
    }
    for (const v of [0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff]) {
      putU32(ours, 5, v);
      node.writeUInt32LE(v, 5);
      expect(ours).toEqual(node);
      expect(u32(node, 5)).toBe(v);
    }
  });

  it('keeps u64 values up to 2^53 and -1 for none', () => {
    const buf = Buffer.alloc(8);
    for (const v of [0, 1, 0xffff_ffff, 0x1_0000_0000, Number.MAX_SAFE_INTEGER, -1]) {
      putU64(buf, 0, v);
      expect(u64(buf, 0)).toBe(v);
    }
    putU64(buf, 0, -5);
    expect(buf).toEqual(Buffer.alloc(8, 0xff));
    expect(buf.readBigUInt64LE(0)).toBe(0xffff_ffff_ffff_ffffn);
    putU64(buf, 0, Number.MAX_SAFE_INTEGER);
    expect(buf.readBigUInt64LE(0)).toBe(BigInt(Number.MAX_SAFE_INTEGER));
  });
});
