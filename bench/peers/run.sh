#!/usr/bin/env bash
# Side-by-side benchmark of halfmq against peer brokers on this machine.
# Optional, never part of `npm test`. See bench/peers/README.md.
#
#   bash bench/peers/run.sh [--messages N] [--only redis,rabbitmq,nats,postgres,halfmq]
#                           [--single N] [--max-seconds S] [--json]
#
# Installs missing peers from Debian packages (needs root), starts each peer
# server itself on 127.0.0.1 with a temporary data dir and a free non-default
# port, one system at a time, runs the same produce / one-at-a-time / e2e
# scenarios, stops exactly the servers it started and removes its temp dirs.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ALL=halfmq,redis,rabbitmq,nats,postgres
MESSAGES=50000
SINGLE=2000
MAXSEC=60
ONLY=$ALL
JSON=0

usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --messages) MESSAGES=$2; shift 2 ;;
    --messages=*) MESSAGES=${1#*=}; shift ;;
    --only) ONLY=$2; shift 2 ;;
    --only=*) ONLY=${1#*=}; shift ;;
    --single) SINGLE=$2; shift 2 ;;
    --single=*) SINGLE=${1#*=}; shift ;;
    --max-seconds) MAXSEC=$2; shift 2 ;;
    --max-seconds=*) MAXSEC=${1#*=}; shift ;;
    --json) JSON=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
for n in "$MESSAGES" "$SINGLE" "$MAXSEC"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: not a positive integer: $n" >&2; exit 2; }
done
IFS=, read -r -a SYSTEMS <<<"$ONLY"
for s in "${SYSTEMS[@]}"; do
  case ",$ALL," in *",$s,"*) ;; *) echo "run.sh: unknown system '$s' (known: $ALL)" >&2; exit 2 ;; esac
done
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
say() { echo "peers: $*" >&2; }

PGBIN=/usr/lib/postgresql/15/bin
RMQ_SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server

WORK=$(mktemp -d /tmp/halfmq-peers.XXXXXX)
chmod 755 "$WORK"            # the postgres user must reach its data dir below
RESULTS="$WORK/results"
mkdir -p "$RESULTS"
STARTED=()                   # "kind:pid" of every server this script started
POLICY_RC_CREATED=0

stop_pid() {                 # stop_pid PID: TERM, wait, then KILL its process group
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    say "pid $pid did not stop in 30 s, killing its process group"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  # Leftover children in the group the server led (setsid made pid the group id).
  kill -TERM -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_server() {              # stop_server "kind:pid"
  local kind=${1%%:*} pid=${1#*:}
  case "$kind" in
    postgres)
      if kill -0 "$pid" 2>/dev/null; then
        as_pg "$PGBIN/pg_ctl" -D "$WORK/postgres/data" -m fast -w -t 30 stop >/dev/null 2>&1 || stop_pid "$pid"
      fi ;;
    *) stop_pid "$pid" ;;
  esac
}

NODE_PID=
cleanup() {
  local rc=$? i
  if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then
    kill -TERM "$NODE_PID" 2>/dev/null || true
    wait "$NODE_PID" 2>/dev/null || true
  fi
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_server "${STARTED[$i]}"; done
  STARTED=()
  [ "$POLICY_RC_CREATED" = 1 ] && rm -f /usr/sbin/policy-rc.d
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted: stopping the servers this script started"; exit 130' INT
trap 'say "terminated: stopping the servers this script started"; exit 143' TERM

forget() {                   # forget "kind:pid" after it was stopped
  local keep=() e
  for e in "${STARTED[@]}"; do [ "$e" = "$1" ] || keep+=("$e"); done
  STARTED=("${keep[@]+"${keep[@]}"}")
}

as_pg() {                    # postgres refuses to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

runjs() {                    # node run.mjs ARGS, in the background so a TERM to this script is handled at once
  # Every peer's client gets the heap settings `halfmq bench` gives its own (src/cli/heap-floor.ts).
  node --initial-old-space-size=128 --max-semi-space-size=32 "$HERE/run.mjs" "$@" &
  NODE_PID=$!
  local rc=0
  wait "$NODE_PID" || rc=$?
  NODE_PID=
  return "$rc"
}

freeports() {                # freeports N: N distinct free ports on 127.0.0.1, one a line
  node -e "
    const net = require('net');
    const n = Number(process.argv[1]), servers = [];
    const next = () => {
      if (servers.length === n) { for (const s of servers) { console.log(s.address().port); s.close(); } return; }
      const s = net.createServer(); servers.push(s); s.listen(0, '127.0.0.1', next);
    };
    next();" "$1"
}

wait_tcp() {                 # wait_tcp PORT SECONDS PID
  local port=$1 secs=$2 pid=$3 i
  for ((i = 0; i < secs * 4; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.25
  done
  return 1
}

skip() {                     # skip SYSTEM REASON
  say "$1: SKIPPED: $2"
  runjs skip --system "$1" --reason "$2" --out "$RESULTS/$1.json"
}

COMMON=(--messages "$MESSAGES" --single "$SINGLE" --max-seconds "$MAXSEC")

drive() {                    # drive SYSTEM PORT VERSION
  say "$1: running scenarios (produce, one-at-a-time, e2e) against 127.0.0.1:$2"
  if ! runjs peer --system "$1" --port "$2" --version "$3" --out "$RESULTS/$1.json" "${COMMON[@]}"; then
    skip "$1" "driver process failed (see stderr above)"
  fi
}

# ---------------------------------------------------------------- installs
declare -A PKG_OF=([redis]=redis-server [rabbitmq]=rabbitmq-server [nats]=nats-server [postgres]=postgresql-15)
declare -A BIN_OF=([redis]=/usr/bin/redis-server [rabbitmq]=$RMQ_SERVER [nats]=/usr/sbin/nats-server [postgres]=$PGBIN/postgres)
declare -A UNAVAILABLE=()
MISSING=()
for s in redis rabbitmq nats postgres; do
  want "$s" || continue
  [ -x "${BIN_OF[$s]}" ] || MISSING+=("$s")
done
if [ ${#MISSING[@]} -gt 0 ]; then
  pkgs=(); for s in "${MISSING[@]}"; do pkgs+=("${PKG_OF[$s]}"); done
  if [ "$(id -u)" != 0 ]; then
    for s in "${MISSING[@]}"; do UNAVAILABLE[$s]="${PKG_OF[$s]} is not installed and this is not root (apt-get install ${PKG_OF[$s]})"; done
  else
    say "installing ${pkgs[*]} from Debian packages"
    # Keep the packages' maintainer scripts from starting system-wide services
    # (redis on 6379, RabbitMQ + epmd, PostgreSQL on 5432): this script starts
    # its own instances and stops them again.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && POLICY_RC_CREATED=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -q --no-install-recommends "${pkgs[@]}"; } >"$WORK/apt.log" 2>&1; then
      say "apt-get install failed; last lines:"; tail -n 15 "$WORK/apt.log" >&2
    fi
    [ "$POLICY_RC_CREATED" = 1 ] && rm -f /usr/sbin/policy-rc.d && POLICY_RC_CREATED=0
    for s in "${MISSING[@]}"; do
      [ -x "${BIN_OF[$s]}" ] || UNAVAILABLE[$s]="${BIN_OF[$s]} missing after apt-get install ${PKG_OF[$s]} (see $WORK/apt.log)"
    done
  fi
fi

if [ ! -d "$HERE/node_modules" ]; then
  say "npm ci in bench/peers"
  (cd "$HERE" && npm ci --no-audit --no-fund >&2) || { say "npm ci in bench/peers failed"; exit 1; }
fi
if want halfmq && [ ! -f "$ROOT/dist/index.js" ]; then
  say "building halfmq (npm run build)"
  (cd "$ROOT" && npm run build >&2) || UNAVAILABLE[halfmq]="npm run build failed at the repository root"
fi

# ---------------------------------------------------------------- systems
run_halfmq() {
  local v
  v=$(node -p "require('$ROOT/package.json').version")
  say "halfmq: running bin/halfmq bench (produce, one-at-a-time, e2e, tx) with --embedded --flush sync"
  runjs halfmq --version "$v" --out "$RESULTS/halfmq.json" "${COMMON[@]}" ||
    skip halfmq "halfmq bench failed (see stderr above)"
}

# serve_and_drive NAME PORT VERSION LOGFILE COMMAND...: starts COMMAND in its own session, drives
# the scenarios once PORT answers (or shows the log and skips NAME), then stops it by its PID.
serve_and_drive() {
  local name=$1 port=$2 version=$3 log=$4 pid
  shift 4
  setsid "$@" >/dev/null 2>&1 &
  pid=$!; STARTED+=("$name:$pid")
  if wait_tcp "$port" 30 "$pid"; then
    drive "$name" "$port" "$version"
  else
    tail -n 20 "$log" >&2 || true
    skip "$name" "$name did not start (log above)"
  fi
  stop_server "$name:$pid"; forget "$name:$pid"
}

run_redis() {
  local d="$WORK/redis" port v
  mkdir -p "$d"; port=$(freeports 1)
  v=$("${BIN_OF[redis]}" --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
  say "redis: starting redis-server $v on 127.0.0.1:$port (appendonly yes, appendfsync always)"
  serve_and_drive redis "$port" "$v" "$d/redis.log" "${BIN_OF[redis]}" --bind 127.0.0.1 --port "$port" --dir "$d" \
    --appendonly yes --appendfsync always --save '' --daemonize no --logfile "$d/redis.log"
}

run_nats() {
  local d="$WORK/nats" port v
  mkdir -p "$d"; port=$(freeports 1)
  v=$("${BIN_OF[nats]}" --version | sed -n 's/.*v\([0-9.]*\).*/\1/p')
  say "nats: starting nats-server $v with JetStream on 127.0.0.1:$port (file store in a temp dir)"
  serve_and_drive nats "$port" "$v" "$d/nats.log" "${BIN_OF[nats]}" -js -sd "$d/js" -a 127.0.0.1 -p "$port" -l "$d/nats.log"
}

run_rabbitmq() {
  local d="$WORK/rabbitmq" port dport eport pid epid v
  mkdir -p "$d"; { read -r port; read -r dport; read -r eport; } < <(freeports 3)
  v=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null | cut -d- -f1)
  echo '[].' >"$d/enabled_plugins"
  : >"$d/rabbitmq-env.conf"
  : >"$d/rabbitmq.conf"
  say "rabbitmq: starting rabbitmq-server $v on 127.0.0.1:$port (epmd on $eport, distribution on $dport); boot takes ~15 s"
  # Our own epmd on a non-default port, in the foreground so that we own its pid
  # (the node would otherwise daemonize one on 4369 that outlives us).
  setsid epmd -port "$eport" -address 127.0.0.1 >"$d/epmd.log" 2>&1 &
  epid=$!; STARTED+=("epmd:$epid")
  (
    export HOME="$d" ERL_EPMD_PORT="$eport"
    export RABBITMQ_NODENAME="halfmqbench$$@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$port"
    export RABBITMQ_DIST_PORT="$dport" RABBITMQ_MNESIA_BASE="$d/mnesia" RABBITMQ_LOG_BASE="$d/log"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf"
    export RABBITMQ_CONFIG_FILE="$d/rabbitmq" RABBITMQ_PID_FILE="$d/rabbitmq.pid"
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    cd "$d"
    exec setsid "$RMQ_SERVER" >"$d/server.log" 2>&1
  ) &
  pid=$!; STARTED+=("rabbitmq:$pid")
  if wait_tcp "$port" 120 "$pid"; then
    drive rabbitmq "$port" "$v"
  else
    tail -n 30 "$d/server.log" >&2 || true
    skip rabbitmq "rabbitmq-server did not start within 120 s (log above)"
  fi
  stop_server "rabbitmq:$pid"; forget "rabbitmq:$pid"
  stop_server "epmd:$epid"; forget "epmd:$epid"
}

run_postgres() {
  local d="$WORK/postgres" port pid v
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    skip postgres "running as root and there is no 'postgres' user to run the server as"
    return
  fi
  mkdir -p "$d/sock"; port=$(freeports 1)
  [ "$(id -u)" = 0 ] && chown -R postgres "$d"
  v=$("$PGBIN/postgres" --version | sed -n 's/.* \([0-9][0-9.]*\).*/\1/p')
  say "postgres: initdb + starting PostgreSQL $v on 127.0.0.1:$port (fsync=on, synchronous_commit=on)"
  if ! as_pg "$PGBIN/initdb" -D "$d/data" -U postgres --auth=trust -E UTF8 --no-instructions >"$d/initdb.log" 2>&1; then
    tail -n 20 "$d/initdb.log" >&2
    skip postgres "initdb failed (log above)"
    return
  fi
  if ! as_pg "$PGBIN/pg_ctl" -D "$d/data" -l "$d/postgres.log" -w -t 60 \
      -o "-p $port -k $d/sock -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on" start >/dev/null 2>&1; then
    tail -n 20 "$d/postgres.log" >&2 || true
    pid=$(head -n 1 "$d/data/postmaster.pid" 2>/dev/null || true)
    [ -n "$pid" ] && stop_pid "$pid"
    skip postgres "pg_ctl start failed (log above)"
    return
  fi
  pid=$(head -n 1 "$d/data/postmaster.pid"); STARTED+=("postgres:$pid")
  drive postgres "$port" "$v"
  stop_server "postgres:$pid"; forget "postgres:$pid"
}

say "work dir $WORK; $MESSAGES messages, $SINGLE one-at-a-time sends, at most $MAXSEC s per load loop"
for s in halfmq redis rabbitmq nats postgres; do
  want "$s" || continue
  if [ -n "${UNAVAILABLE[$s]+x}" ]; then skip "$s" "${UNAVAILABLE[$s]}"; continue; fi
  "run_$s"
done

if [ "$JSON" = 1 ]; then
  runjs report --json --dir "$RESULTS" "${COMMON[@]}"
else
  runjs report --dir "$RESULTS" "${COMMON[@]}"
fi
