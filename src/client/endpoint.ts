import { InvalidArgumentError } from '../common/errors.js';

/** A broker address. `address` is the canonical `host:port` (`[v6]:port`) form used in messages. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly address: string;
}

/** Formats host and port the way `parseEndpoint` reads them back (IPv6 hosts in brackets). */
export function formatEndpoint(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Parses `'host:port'` or `'[ipv6]:port'`. A bare IPv6 address is refused rather than guessed at:
 * in `::1:9876` the port cannot be told apart from the last address group.
 */
export function parseEndpoint(input: unknown): Endpoint {
  if (typeof input !== 'string' || input.trim() === '') {
    throw new InvalidArgumentError(`endpoints must be a non-empty "host:port" string, got ${describe(input)}`);
  }
  const text = input.trim();
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') {
      throw new InvalidArgumentError(`invalid endpoint "${text}": expected "[ipv6]:port"`);
    }
    host = text.slice(1, close);
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) throw new InvalidArgumentError(`invalid endpoint "${text}": expected "host:port" (the port is missing)`);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) {
      throw new InvalidArgumentError(`invalid endpoint "${text}": put an IPv6 address in brackets, e.g. "[::1]:9876"`);
    }
  }
  if (host === '') throw new InvalidArgumentError(`invalid endpoint "${text}": the host is empty`);
  if (/\s/.test(host)) throw new InvalidArgumentError(`invalid endpoint "${text}": the host contains whitespace`);
  if (!/^\d+$/.test(portText)) throw new InvalidArgumentError(`invalid endpoint "${text}": the port must be a number`);
  const port = Number(portText);
  if (port < 1 || port > 65535) throw new InvalidArgumentError(`invalid endpoint "${text}": the port must be 1..65535`);
  return { host, port, address: formatEndpoint(host, port) };
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : typeof value;
}
