import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../../src/common/errors.js';
import { loadConfigFile, parseBytes, resolveBrokerConfig } from '../../../src/cli/broker-config.js';

describe('resolveBrokerConfig', () => {
  it('has the documented defaults', () => {
    const { config, sources } = resolveBrokerConfig({});
    expect(config).toEqual({ host: '127.0.0.1', port: 9876, dataDir: './data', flush: 'sync', autoCreateTopics: true, defaultQueues: 4 });
    expect(Object.values(sources).every((s) => s === 'default')).toBe(true);
  });

  it('applies flags > env > file > defaults, per setting', () => {
    const { config, sources } = resolveBrokerConfig({
      flags: { port: '1111' },
      env: { HALFMQ_PORT: '2222', HALFMQ_FLUSH: 'async', HALFMQ_HOST: '' },
      file: { port: 3333, flush: 'sync', host: '0.0.0.0', data: '/var/halfmq', autoCreateTopics: false },
      fileName: 'halfmq.json',
    });
    expect(config.port).toBe(1111);
    expect(config.flush).toBe('async');
    expect(config.host).toBe('0.0.0.0'); // an empty env var counts as unset
    expect(config.dataDir).toBe('/var/halfmq');
    expect(config.autoCreateTopics).toBe(false);
    expect(config.defaultQueues).toBe(4);
    expect(sources).toMatchObject({ port: 'flag', flush: 'env', host: 'file', data: 'file', autoCreateTopics: 'file', defaultQueues: 'default' });
  });

  it('env beats file, file beats default', () => {
    const file = { port: 9877, flush: 'async', autoCreateTopics: false };
    expect(resolveBrokerConfig({ file }).config).toMatchObject({ port: 9877, flush: 'async', autoCreateTopics: false });
    expect(resolveBrokerConfig({ file, env: { HALFMQ_PORT: '9878', HALFMQ_DATA: '/d' } }).config).toMatchObject({ port: 9878, dataDir: '/d' });
  });

  it('parses every flag', () => {
    const { config } = resolveBrokerConfig({
      flags: { host: '::', port: '0', data: 'x', flush: 'async', autoCreateTopics: 'false', defaultQueues: '8', maxMessageSize: '1MiB', segmentSize: '65536' },
    });
    expect(config).toEqual({ host: '::', port: 0, dataDir: 'x', flush: 'async', autoCreateTopics: false, defaultQueues: 8, maxMessageSize: 1048576, segmentSize: 65536 });
  });

  it.each([
    [{ flags: { port: 'abc' } }, /--port must be a port number/],
    [{ flags: { port: '70000' } }, /--port/],
    [{ env: { HALFMQ_PORT: '-1' } }, /HALFMQ_PORT must be a port number/],
    [{ flags: { flush: 'sometimes' } }, /--flush must be sync or async/],
    [{ env: { HALFMQ_FLUSH: 'never' } }, /HALFMQ_FLUSH/],
    [{ flags: { autoCreateTopics: 'maybe' } }, /--auto-create-topics must be true or false/],
    [{ flags: { defaultQueues: '0' } }, /--default-queues must be a positive integer/],
    [{ flags: { maxMessageSize: '4 parsecs' } }, /--max-message-size must be a positive size/],
    [{ file: { port: '9877' }, fileName: 'c.json' }, /config file c.json: port must be a number/],
    [{ file: { autoCreateTopics: 'no' }, fileName: 'c.json' }, /autoCreateTopics must be a boolean/],
    [{ file: { prot: 1 }, fileName: 'c.json' }, /config file c.json: unknown setting "prot"/],
  ])('rejects %j', (input, message) => {
    expect(() => resolveBrokerConfig(input as Parameters<typeof resolveBrokerConfig>[0])).toThrow(InvalidArgumentError);
    expect(() => resolveBrokerConfig(input as Parameters<typeof resolveBrokerConfig>[0])).toThrow(message);
  });

  it('reads sizes with binary units', () => {
    expect(parseBytes('4MiB', 'x')).toBe(4 * 1024 * 1024);
    expect(parseBytes('64k', 'x')).toBe(65536);
    expect(parseBytes('1G', 'x')).toBe(1024 ** 3);
    expect(() => parseBytes('0', 'x')).toThrow(InvalidArgumentError);
  });
});

describe('loadConfigFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'halfmq-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a JSON object', async () => {
    const file = join(dir, 'ok.json');
    await writeFile(file, '{"port": 9877, "flush": "async", "autoCreateTopics": false}');
    const parsed = await loadConfigFile(file);
    expect(resolveBrokerConfig({ file: parsed, fileName: file }).config).toMatchObject({ port: 9877, flush: 'async', autoCreateTopics: false });
  });

  it('reports a missing file, bad JSON and a non-object clearly', async () => {
    await expect(loadConfigFile(join(dir, 'missing.json'))).rejects.toThrow(/cannot read config file .*missing.json: ENOENT/);
    await writeFile(join(dir, 'bad.json'), '{port: 1}');
    await expect(loadConfigFile(join(dir, 'bad.json'))).rejects.toThrow(/is not valid JSON/);
    await writeFile(join(dir, 'array.json'), '[1]');
    await expect(loadConfigFile(join(dir, 'array.json'))).rejects.toThrow(/must contain a JSON object/);
  });
});
