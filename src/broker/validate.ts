import { InvalidArgumentError } from '../common/errors.js';

/**
 * Request payloads come from the network: check every field before trusting it. `index` names an
 * entry of a list (`what[index]`) without building that name for every entry that is fine.
 */
export function asObject(value: unknown, what: string, index?: number): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidArgumentError(`${index === undefined ? what : `${what}[${index}]`} must be an object`);
  }
  return value as Record<string, unknown>;
}

export function reqString(obj: Record<string, unknown>, field: string, what = field): string {
  const v = obj[field];
  if (typeof v !== 'string' || v.length === 0) throw new InvalidArgumentError(`${what} must be a non-empty string`);
  return v;
}

export function optString(obj: Record<string, unknown>, field: string, what = field): string | undefined {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new InvalidArgumentError(`${what} must be a string`);
  return v;
}

export function optInt(obj: Record<string, unknown>, field: string, min: number, max: number, fallback: number): number {
  const v = obj[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(`${field} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function reqInt(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new InvalidArgumentError(`${what} must be a non-negative integer`);
  }
  return value;
}

export function optStringArray(value: unknown, what: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((k) => typeof k === 'string')) {
    throw new InvalidArgumentError(`${what} must be an array of strings`);
  }
  return value as string[];
}

export function optStringRecord(value: unknown, what: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  const obj = asObject(value, what);
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v !== 'string') throw new InvalidArgumentError(`${what}.${k} must be a string`);
  }
  return obj as Record<string, string>;
}
