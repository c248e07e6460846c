import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../../src/common/errors.js';
import { formatEndpoint, parseEndpoint } from '../../../src/client/endpoint.js';

describe('parseEndpoint', () => {
  it('parses host:port', () => {
    expect(parseEndpoint('127.0.0.1:9876')).toEqual({ host: '127.0.0.1', port: 9876, address: '127.0.0.1:9876' });
    expect(parseEndpoint(' broker.local:1 ')).toEqual({ host: 'broker.local', port: 1, address: 'broker.local:1' });
  });

  it('parses a bracketed IPv6 address', () => {
    expect(parseEndpoint('[::1]:9876')).toEqual({ host: '::1', port: 9876, address: '[::1]:9876' });
    expect(parseEndpoint('[fe80::1%eth0]:65535').host).toBe('fe80::1%eth0');
  });

  it.each([
    ['', /non-empty/],
    ['localhost', /port is missing/],
    [':9876', /host is empty/],
    ['localhost:', /port must be a number/],
    ['localhost:abc', /port must be a number/],
    ['localhost:0', /1\.\.65535/],
    ['localhost:65536', /1\.\.65535/],
    ['localhost:-1', /port must be a number/],
    ['::1:9876', /brackets/],
    ['[::1]9876', /\[ipv6\]:port/],
    ['[::1', /\[ipv6\]:port/],
    ['[]:9876', /host is empty/],
    ['bad host:1', /whitespace/],
  ])('rejects %j', (input, message) => {
    expect(() => parseEndpoint(input)).toThrow(InvalidArgumentError);
    expect(() => parseEndpoint(input)).toThrow(message);
  });

  it('rejects non-strings with a clear error', () => {
    expect(() => parseEndpoint(undefined)).toThrow(/endpoints must be a non-empty "host:port" string, got undefined/);
    expect(() => parseEndpoint(9876)).toThrow(InvalidArgumentError);
  });

  it('formats what it parses', () => {
    expect(formatEndpoint('::1', 5)).toBe('[::1]:5');
    expect(formatEndpoint('10.0.0.1', 5)).toBe('10.0.0.1:5');
    for (const a of ['[::1]:9876', 'h:1']) expect(parseEndpoint(a).address).toBe(a);
  });
});
