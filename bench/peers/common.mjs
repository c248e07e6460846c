// Shared pieces of the peer drivers: payloads, a bounded closed-loop load
// generator, percentiles, and the generic produce / one-at-a-time / e2e
// scenarios that every peer driver plugs into.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';

export const log = (...args) => process.stderr.write(`${args.join(' ')}\n`);

export const fmtInt = (n) => (n == null || Number.isNaN(n) ? 'n/a' : Math.round(n).toLocaleString('en-US'));

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A 1 KiB (or `size`) random body; its first 8 bytes are overwritten with a send timestamp by stamp(). */
export function makeBody(size) {
  return randomBytes(Math.max(size, 8));
}

/** Copy of `template` with performance.now() (ms, float64 LE) in the first 8 bytes. */
export function stamp(template) {
  const b = Buffer.from(template);
  b.writeDoubleLE(performance.now(), 0);
  return b;
}

/** Send-to-receive latency (ms) from a body written by stamp(); same process, same clock. */
export function ageMs(body) {
  return performance.now() - body.readDoubleLE(0);
}

/** CPU used by this (client) process since `cpu0`, as a share of one core. */
export function cpuShare(cpu0, seconds) {
  const d = process.cpuUsage(cpu0);
  return seconds > 0 ? Math.round(((d.user + d.system) / 1e6 / seconds) * 100) / 100 : null;
}

export function percentiles(samples) {
  if (samples.length === 0) return { p50: null, p90: null, p99: null, max: null };
  const s = Float64Array.from(samples).sort();
  const at = (q) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  const r3 = (x) => Math.round(x * 1000) / 1000;
  return { p50: r3(at(0.5)), p90: r3(at(0.9)), p99: r3(at(0.99)), max: r3(s[s.length - 1]) };
}

/** Every scenario's unmeasured warm-up, at full load (halfmq bench's is the same). */
const WARMUP_SECONDS = 2;

/**
 * Closed loop: `concurrency` workers call `op(i)` until `total` ops were
 * started or `maxSeconds` passed; every op's latency is recorded.
 * Bounded in count and in time. A failing op aborts the run.
 */
export async function closedLoop({ total, concurrency, maxSeconds, op }) {
  const lat = [];
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const deadline = t0 + maxSeconds * 1000;
  let timedOut = false;
  async function worker() {
    for (;;) {
      if (next >= total) return;
      if (performance.now() > deadline) {
        timedOut = true;
        return;
      }
      const i = next++;
      const s = performance.now();
      await op(i);
      lat.push(performance.now() - s);
      done++;
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const seconds = (performance.now() - t0) / 1000;
  return { done, seconds, timedOut, latencyMs: percentiles(lat), clientCpu: cpuShare(cpu0, seconds) };
}

function result(scenario, r, size, details) {
  const msgsPerSec = r.seconds > 0 ? Math.round(r.done / r.seconds) : 0;
  return {
    scenario,
    messages: r.done,
    seconds: Math.round(r.seconds * 1000) / 1000,
    msgsPerSec,
    mbPerSec: Math.round(((msgsPerSec * size) / 1048576) * 100) / 100,
    latencyMs: r.latencyMs,
    details: { ...details, clientCpuCores: r.clientCpu, ...(r.timedOut ? { timedOut: true } : {}) },
  };
}

/**
 * Generic scenarios over a driver:
 *   driver.prepare(tag)           fresh stream / queue / tables for a scenario
 *   driver.send(tag, buf)         one durably acknowledged send
 *   driver.startConsumer(tag, onBody) -> { stop() }   delivers bodies, acks them
 *   driver.close()
 */
export async function produceScenario(driver, { messages, size, concurrency, maxSeconds, label }) {
  const tag = `produce_c${concurrency}`;
  await driver.prepare(tag);
  const body = makeBody(size);
  // Warm-up (not measured): connections, JIT, queue / stream creation. For a time at full load, as
  // `halfmq bench` does: every system is measured in its steady state.
  const warm = await closedLoop({ total: Number.MAX_SAFE_INTEGER, concurrency, maxSeconds: WARMUP_SECONDS, op: () => driver.send(tag, body) });
  const r = await closedLoop({ total: messages, concurrency, maxSeconds, op: () => driver.send(tag, body) });
  const out = result('produce', r, size, { concurrency, size, warmup: warm.done, latency: 'per acknowledged send' });
  log(`${label}: produce c=${concurrency} ${fmtInt(out.msgsPerSec)} msgs/s p50 ${out.latencyMs.p50} ms p99 ${out.latencyMs.p99} ms, client CPU ${r.clientCpu} cores${r.timedOut ? ' (time limit hit)' : ''}`);
  return out;
}

export async function e2eScenario(driver, { messages, size, concurrency, maxSeconds, label }) {
  const tag = 'e2e';
  await driver.prepare(tag);
  const template = makeBody(size);
  const lat = [];
  let received = 0;
  let resolveAll;
  const allIn = new Promise((r) => (resolveAll = r));
  let target = Infinity; // known once the warm-up has sent what it sends
  let measuring = false;
  let measuredIn = 0;
  const consumer = await driver.startConsumer(tag, (body) => {
    received++;
    if (measuring) {
      lat.push(ageMs(body));
      measuredIn++;
    }
    if (received >= target) resolveAll();
  });
  try {
    // Warm-up, for a time at full load as for produce: send, then wait until the consumer has it all.
    const warm = (await closedLoop({ total: Number.MAX_SAFE_INTEGER, concurrency, maxSeconds: WARMUP_SECONDS, op: () => driver.send(tag, stamp(template)) })).done;
    target = warm + messages;
    const wDeadline = performance.now() + 10_000;
    while (received < warm && performance.now() < wDeadline) await sleep(5);
    measuring = true;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const send = await closedLoop({ total: messages, concurrency, maxSeconds, op: () => driver.send(tag, stamp(template)) });
    // Wait for the consumer to catch up, but never longer than the time budget.
    const left = Math.max(1000, maxSeconds * 1000 - (performance.now() - t0));
    let timedOut = send.timedOut;
    await Promise.race([allIn, sleep(left).then(() => (timedOut = true))]);
    const seconds = (performance.now() - t0) / 1000;
    const clientCpu = cpuShare(cpu0, seconds);
    const out = result('e2e', { done: measuredIn, seconds, timedOut, latencyMs: percentiles(lat), clientCpu }, size, {
      concurrency,
      size,
      sent: send.done,
      sendMsgsPerSec: Math.round(send.done / send.seconds),
      latency: 'send to consumer handler (timestamp in body)',
    });
    log(`${label}: e2e ${fmtInt(out.msgsPerSec)} msgs/s delivered, p50 ${out.latencyMs.p50} ms p99 ${out.latencyMs.p99} ms, client CPU ${clientCpu} cores${timedOut ? ' (time limit hit)' : ''}`);
    return out;
  } finally {
    await consumer.stop();
  }
}

/** produce at 256 in flight, one-at-a-time, e2e — the same three for every peer. */
export async function runStandard(driver, opts) {
  const { messages, singleMessages, size, concurrency, maxSeconds, label } = opts;
  const res = {};
  res.produce = await produceScenario(driver, { messages, size, concurrency, maxSeconds, label });
  res.single = await produceScenario(driver, { messages: singleMessages, size, concurrency: 1, maxSeconds, label });
  res.e2e = await e2eScenario(driver, { messages, size, concurrency, maxSeconds, label });
  return res;
}
