#!/usr/bin/env bash
# Runs examples/python/ping.py (pyzmq + msgpack) against the rpc crate's example server and
# against the real zpm daemon, then examples/python/agent.py (a third-party agent: hello,
# heartbeats, bus subscription with credit, app.list, app.restart, an event of its own, a
# Node app's process:msg)
# against the daemon — over ipc, then over keyed TCP through `zpm tunnel` — checked from
# its output, `zpm agents` and `zpm events`.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet -p zpm-rpc --example ping_server
cargo build --quiet -p zpm
work=$(mktemp -d)
server_pid=""
events_pid=""
agent_pid=""
tunnel_pid=""
stop() { # stop PID: ends a process this script started, by its pid
  if [ -n "$1" ]; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi
}
cleanup() {
  stop "$server_pid"
  stop "$agent_pid"
  stop "$events_pid"
  stop "$tunnel_pid"
  ZPM_HOME="$work/home" ./target/debug/zpm kill >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

check() {
  local output
  output=$(python3 examples/python/ping.py "$1")
  echo "$output"
  grep -q "^DEALER: {.*'pid': [0-9]" <<<"$output"
  grep -q "^REQ: .*'pid': [0-9]" <<<"$output"
}

echo "-- against the rpc example server"
endpoint="ipc://$work/rpc.sock"
./target/debug/examples/ping_server "$endpoint" >"$work/server.log" 2>&1 &
server_pid=$!
deadline=$((SECONDS + 30))
until [ -S "$work/rpc.sock" ]; do
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server.log"; echo "ping_server exited"; exit 1; fi
  if [ "$SECONDS" -ge "$deadline" ]; then echo "ping_server did not bind in 30 s"; exit 1; fi
  sleep 0.05
done
check "$endpoint"

echo "-- against the zpm daemon"
ZPM_HOME="$work/home" ./target/debug/zpm ping
(export ZPM_HOME="$work/home"; check "")

export ZPM_HOME="$work/home"
zpm=./target/debug/zpm

wait_for() { # wait_for WHAT COMMAND…: polls COMMAND for 20 s
  local what=$1 deadline=$((SECONDS + 20))
  shift
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "timed out waiting for $what"; exit 1; fi
    sleep 0.05
  done
}

listed() { # listed ROLE PID: God lists that role with that pid
  $zpm agents --json | python3 -c '
import json, sys
role, pid = sys.argv[1], int(sys.argv[2])
sys.exit(not any(a["role"] == role and a["pid"] == pid for a in json.load(sys.stdin)))
' "$1" "$2"
}

run_agent() { # run_agent ROLE HOME: agent.py as ROLE on God's endpoints in HOME, checked
  local role=$1 home=$2 status=0
  # Started before the agent, bounded; the agent publishes its event only once God tells
  # it (bus.interest) that a subscriber wants the topic, so this cannot miss it.
  timeout 20 $zpm events "$role:" --json >"$work/events.out" 2>"$work/events.err" &
  events_pid=$!
  python3 examples/python/agent.py --once --role "$role" --home "$home" --restart hello \
    --await-msg talker --timeout 15 >"$work/agent.out" 2>"$work/agent.err" &
  agent_pid=$!
  # God keeps the row after the agent leaves (not connected), so this cannot miss it.
  wait_for "zpm agents to list $role" listed "$role" "$agent_pid"
  $zpm agents
  wait "$agent_pid" || status=$?
  agent_pid=""
  cat "$work/agent.out"
  if [ "$status" -ne 0 ]; then cat "$work/agent.err"; echo "agent.py exited with $status"; exit 1; fi
  expect() { # expect PATTERN WHAT: a line of the agent's output matches
    grep -Eq "$1" "$work/agent.out" || { cat "$work/agent.err"; echo "agent.py did not print $2"; exit 1; }
  }
  expect "^HELLO role=$role " "its accepted hello"
  expect "^LISTED role=$role .*pid=[0-9]+ connected=True" "that God listed it as connected"
  expect '^APPS .*[0-9]+:hello\(' "the apps, hello among them"
  expect '^RESTARTED hello: [0-9]+:hello pid=[0-9]+' "the restart"
  expect '^EVENT process:event .*"event":"restart".*"name":"hello"' "the restart's process:event"
  expect '^EVENT process:event .*"event":"online".*"name":"hello"' "the new run's process:event"
  expect "^PUBLISHED $role:hello seq=1$" "its own event"
  expect '^EVENT process:msg .*"data":\{"from":"node"\}.*"name":"talker"' "the Node app's process:msg"
  expect '^DONE$' "DONE"
  seen() { grep -q "\"topic\":\"$role:hello\"" "$work/events.out"; }
  wait_for "zpm events to show $role:hello" seen
  grep "\"topic\":\"$role:hello\"" "$work/events.out"
  grep -q "\"source\":\"$role\"" "$work/events.out"
  stop "$events_pid"
  events_pid=""
}

# A Node app talking to the bus the PM2 way: process.send({type: 'process:msg', data}).
cat >"$work/talker.js" <<'JS'
setInterval(() => process.send({ type: 'process:msg', data: { from: 'node' } }), 100);
JS
start_apps() {
  $zpm start examples/hello.sh --name hello >/dev/null
  $zpm start "$work/talker.js" --name talker >/dev/null
}

echo "-- a Python agent against the zpm daemon, over ipc"
start_apps
run_agent py-watcher "$ZPM_HOME"
$zpm kill

echo "-- the same agent over keyed TCP, through zpm tunnel"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$zpm keygen --out "$work/fleet.key"
printf 'listen = "tcp://127.0.0.1:%s"\nkey_file = "%s"\n' "$port" "$work/fleet.key" >"$ZPM_HOME/config.toml"
$zpm ping --json | grep -q "\"listening\":\"tcp://127.0.0.1:$port\""
start_apps
$zpm tunnel --connect "tcp://127.0.0.1:$port" --key-file "$work/fleet.key" \
  --local "ipc://$work/tunnel" >"$work/tunnel.out" 2>&1 &
tunnel_pid=$!
exposed() { [ -S "$work/tunnel/rpc.sock" ] && [ -S "$work/tunnel/bus.sock" ]; }
wait_for "zpm tunnel to expose God" exposed
run_agent py-keyed "$work/tunnel"
$zpm ping --json | python3 -c '
import json, sys
tcp = json.load(sys.stdin)["guards"]["tcp"]
print("tunnel counters:", tcp)
sys.exit(not (tcp["connections"] >= 2 and tcp["handshakes_failed"] == 0))
'
stop "$tunnel_pid"
tunnel_pid=""
$zpm kill
echo "python interop: ok"
