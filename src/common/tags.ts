import { crc32 } from 'node:zlib';

/**
 * Tag hashes are stored in each 20-byte consume-queue entry so the broker can filter by tag without
 * reading the commit log. 0 means "no tag". A hash match is confirmed against the real tag when the
 * record is read, so collisions cost a read, never a wrong delivery.
 */
export function tagHash(tag: string | undefined): number {
  if (tag === undefined || tag === '') return 0;
  return crc32(tag) || 1;
}

/** A parsed subscription expression: `*` (everything) or `tagA || tagB`. */
export interface TagFilter {
  readonly all: boolean;
  readonly tags: ReadonlySet<string>;
  readonly hashes: ReadonlySet<number>;
  readonly expression: string;
}

export function parseTagExpression(expression: string | undefined): TagFilter {
  const expr = (expression ?? '*').trim();
  if (expr === '' || expr === '*') return { all: true, tags: new Set(), hashes: new Set(), expression: '*' };
  const tags = new Set(
    expr
      .split('||')
      .map((t) => t.trim())
      .filter((t) => t.length > 0),
  );
  return { all: false, tags, hashes: new Set([...tags].map(tagHash)), expression: expr };
}

export function matchesTag(filter: TagFilter, tag: string | undefined): boolean {
  return filter.all || (tag !== undefined && filter.tags.has(tag));
}
