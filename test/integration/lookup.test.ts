import { afterEach, describe, expect, it } from 'vitest';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Producer } from '../../src/index.js';
import { MetadataStore, decodeRecord } from '../../src/storage/index.js';
import { segmentFiles } from '../helpers/segment-files.js';
import { removeDir, runCli, startBrokerProcess, tempDir, uniqueName } from '../helpers/broker-process.js';
import type { BrokerProcess } from '../helpers/broker-process.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

async function started(dataDir: string): Promise<BrokerProcess> {
  const b = await startBrokerProcess({ dataDir });
  cleanup.push(() => b.kill9());
  return b;
}

async function cliJson(b: BrokerProcess, args: string[]): Promise<Record<string, unknown>[]> {
  const r = await runCli([...args, '--json', '--server', b.endpoints]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('message lookup', () => {
  it('finds messages by id and by key, also after a kill -9 right after the sends', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const topic = uniqueName('orders');
    let broker = await started(dataDir);
    const producer = new Producer({ endpoints: broker.endpoints });
    const sent = await producer.sendBatch(
      Array.from({ length: 30 }, (_, i) => ({ topic, body: `order ${i}`, keys: [`order-${i}`, `customer-${i % 3}`], tag: 'created' })),
    );
    const delayed = await producer.send({ topic, body: 'later', keys: 'order-late', delayMs: 60_000 });
    await producer.shutdown();
    // No wait: the index batch and the checkpoint may not have happened; recovery must rebuild.
    await broker.kill9();
    broker = await started(dataDir);

    const [byId] = await cliJson(broker, ['message', 'get', '--id', sent[7]!.msgId]);
    expect(byId).toMatchObject({ msgId: sent[7]!.msgId, topic, queueId: sent[7]!.queueId, queueOffset: sent[7]!.queueOffset, tag: 'created', body: 'order 7', keys: ['order-7', 'customer-1'] });

    const customer = await cliJson(broker, ['message', 'find', '--topic', topic, '--key', 'customer-1']);
    expect(customer.map((m) => m.body).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `order ${i * 3 + 1}`).sort());

    const [late] = await cliJson(broker, ['message', 'find', '--topic', topic, '--key', 'order-late']);
    expect(late).toMatchObject({ msgId: delayed.msgId, queueOffset: -1, body: 'later' });
    expect(late!.deliverAt).toBeGreaterThan(Date.now());

    expect(await cliJson(broker, ['message', 'find', '--topic', topic, '--key', 'nobody'])).toEqual([]);
    const missing = await runCli(['message', 'get', '--id', 'no-such-id', '--server', broker.endpoints]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/MESSAGE_NOT_FOUND/);
    // Bad input gets one clear line; the broker keeps serving.
    const badGroup = await runCli(['dlq', 'list', '--group', 'no spaces allowed', '--server', broker.endpoints]);
    expect(badGroup.code).toBe(1);
    expect(badGroup.stderr).toMatch(/invalid group name.*\(INVALID_ARGUMENT\)/);
    const neither = await runCli(['dlq', 'resend', '--group', 'g', '--server', broker.endpoints]);
    expect(neither.stderr).toMatch(/exactly one of --id ID or --all/);
    const text = await runCli(['message', 'get', '--id', sent[0]!.msgId, '--server', broker.endpoints]);
    expect(text.stdout).toContain(`${topic}/${sent[0]!.queueId}@${sent[0]!.queueOffset}`);
  });

  it('moves an index kept in level by an older broker into the index files', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const topic = uniqueName('legacy');
    let broker = await started(dataDir);
    const producer = new Producer({ endpoints: broker.endpoints });
    const [sent] = await producer.sendBatch([{ topic, body: 'from before', keys: 'old-key' }]);
    await producer.shutdown();
    expect(await broker.stop()).toBe(0);
    // What a 0.1 broker left behind: level entries and no index files.
    const message = sent!;
    // The only record in a fresh log starts at offset 0.
    expect(decodeRecord(await readFile((await segmentFiles(dataDir))[0]!), 0).msgId).toBe(message.msgId);
    await rm(join(dataDir, 'index'), { recursive: true });
    const metadata = await MetadataStore.open(dataDir);
    const at = '0'.repeat(20);
    await metadata.sublevel('msgindex').batch([
      { type: 'put', key: `i\u0000${message.msgId}\u0000${at}`, value: 1 },
      { type: 'put', key: `k\u0000${topic}\u0000old-key\u0000${at}`, value: 1 },
    ]);
    await metadata.close();

    broker = await started(dataDir);
    expect(broker.stderr()).toMatch(/2 entries moved from level/);
    const [byId] = await cliJson(broker, ['message', 'get', '--id', message.msgId]);
    expect(byId).toMatchObject({ msgId: message.msgId, body: 'from before' });
    const [byKey] = await cliJson(broker, ['message', 'find', '--topic', topic, '--key', 'old-key']);
    expect(byKey).toMatchObject({ msgId: message.msgId });
    // Moved once: the next start finds level empty.
    expect(await broker.stop()).toBe(0);
    broker = await started(dataDir);
    expect(broker.stderr()).not.toMatch(/moved from level/);
  });
});
