#!/usr/bin/env bash
# Interleaved A/B of two halfmq builds on this machine: the only comparison this shared host
# supports (the same command moves by 2x within an hour; single runs minutes apart do not compare).
#
#   bash bench/ab.sh OTHER_ROOT "BENCH ARGS" [PAIRS]
#
# OTHER_ROOT is another checkout, built (`npm ci && npm run build`), e.g. a `git worktree` of an
# older commit; it runs first in each pair (A), this checkout second (B). Each run starts its own
# broker (`halfmq broker --port 0` in a temp dir, with the heap floor `npm start` uses), runs
# `halfmq bench ARGS --server` against it, stops it, and prints one line: msgs/s, p50/p99 ms,
# the broker's CPU seconds (from /proc) and the client's (from /usr/bin/time), and the tx and e2e
# extras when present. Default 3 pairs. Optional, never part of `npm test`.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 2 ] || { sed -n '5,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
OTHER=$(cd "$1" && pwd); ARGS=$2; PAIRS=${3:-3}
[[ $PAIRS =~ ^[1-9][0-9]*$ ]] || { echo "ab.sh: PAIRS must be a positive integer: $PAIRS" >&2; exit 2; }
for root in "$OTHER" "$HERE"; do
  [ -f "$root/dist/cli/main.js" ] || { echo "ab.sh: $root has no build (npm run build)" >&2; exit 2; }
done
WORK=$(mktemp -d /tmp/halfmq-ab.XXXXXX)
BROKER=""
cleanup() { if [ -n "$BROKER" ]; then kill -INT "$BROKER" 2>/dev/null || true; wait "$BROKER" 2>/dev/null || true; fi; rm -rf "$WORK"; }
trap cleanup EXIT

run() {  # run ROOT LABEL
  local root=$1 label=$2 addr="" i
  rm -rf "$WORK/data"
  node --initial-old-space-size=128 "$root/bin/halfmq" broker --host 127.0.0.1 --port 0 --data "$WORK/data" > "$WORK/broker.out" 2> "$WORK/broker.err" &
  BROKER=$!
  for i in $(seq 1 100); do
    addr=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$WORK/broker.out" | head -1)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "ab.sh: the broker of $root did not start: $(cat "$WORK/broker.err")" >&2; exit 1; }
  # shellcheck disable=SC2086
  /usr/bin/time -f '%U %S' -o "$WORK/time" node "$root/bin/halfmq" bench $ARGS --server "$addr" --json > "$WORK/out.json"
  local broker_cpu
  broker_cpu=$(awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$BROKER/stat")
  kill -INT "$BROKER"; wait "$BROKER" 2>/dev/null || true; BROKER=""
  node -e '
    const [file, label, brokerCpu, timeFile] = process.argv.slice(1);
    const r = JSON.parse(require("fs").readFileSync(file, "utf8"));
    const [u, s] = require("fs").readFileSync(timeFile, "utf8").trim().split(/\s+/).map(Number);
    const d = r.details ?? {};
    const extra = [d.plainSends ? `plain ${d.plainSends.msgsPerSec}` : "", d.sendAckMs ? `sendAck p99 ${d.sendAckMs.p99}` : ""].filter(Boolean).join(" ");
    console.log(`${label} ${String(r.msgsPerSec).padStart(8)} msgs/s  p50 ${r.latencyMs.p50}  p99 ${r.latencyMs.p99}  broker ${brokerCpu} s  client ${(u + s).toFixed(2)} s  ${extra}`);
  ' "$WORK/out.json" "$label" "$broker_cpu" "$WORK/time"
}

echo "A = $OTHER ($(git -C "$OTHER" rev-parse --short HEAD 2>/dev/null || echo '?'))  B = $HERE ($(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo '?'))  bench $ARGS"
for i in $(seq 1 "$PAIRS"); do run "$OTHER" A; run "$HERE" B; done
