#!/usr/bin/env bash
# Runs examples/python/ping.py (pyzmq + msgpack) against the rpc crate's example server and
# against the real zpm daemon, then examples/python/agent.py (a third-party agent: hello,
# heartbeats, bus subscription with credit, app.list, app.restart, an event of its own)
# against the daemon, checked from its output, `zpm agents` and `zpm events`.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet -p zpm-rpc --example ping_server
cargo build --quiet -p zpm
work=$(mktemp -d)
server_pid=""
events_pid=""
agent_pid=""
stop() { # stop PID: ends a process this script started, by its pid
  if [ -n "$1" ]; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi
}
cleanup() {
  stop "$server_pid"
  stop "$agent_pid"
  stop "$events_pid"
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

echo "-- a Python agent against the zpm daemon"
export ZPM_HOME="$work/home"
zpm=./target/debug/zpm
$zpm start examples/hello.sh --name hello >/dev/null
# Started before the agent, bounded; the agent publishes its event only once God tells it
# (bus.interest) that a subscriber wants the topic, so this cannot miss it.
timeout 20 $zpm events py-watcher: --json >"$work/events.out" 2>"$work/events.err" &
events_pid=$!
python3 examples/python/agent.py --once --restart hello --timeout 15 \
  >"$work/agent.out" 2>"$work/agent.err" &
agent_pid=$!
# God lists the custom role with this agent's pid (it keeps the row after the agent
# leaves, as not connected, so this cannot miss it either).
deadline=$((SECONDS + 20))
until $zpm agents --json | python3 -c '
import json, sys
pid = int(sys.argv[1])
sys.exit(not any(a["role"] == "py-watcher" and a["pid"] == pid for a in json.load(sys.stdin)))
' "$agent_pid"; do
  if [ "$SECONDS" -ge "$deadline" ]; then $zpm agents; echo "zpm agents never listed py-watcher"; exit 1; fi
  sleep 0.05
done
$zpm agents
agent_status=0
wait "$agent_pid" || agent_status=$?
agent_pid=""
cat "$work/agent.out"
if [ "$agent_status" -ne 0 ]; then cat "$work/agent.err"; echo "agent.py exited with $agent_status"; exit 1; fi
expect() { # expect PATTERN WHAT: a line of the agent's output matches
  grep -Eq "$1" "$work/agent.out" || { cat "$work/agent.err"; echo "agent.py did not print $2"; exit 1; }
}
expect '^HELLO role=py-watcher ' "its accepted hello"
expect "^LISTED role=py-watcher .*pid=[0-9]+ connected=True" "that God listed it as connected"
expect '^APPS .*[0-9]+:hello\(' "the apps, hello among them"
expect '^RESTARTED hello: [0-9]+:hello pid=[0-9]+' "the restart"
expect '^EVENT process:event .*"event":"restart".*"name":"hello"' "the restart's process:event"
expect '^EVENT process:event .*"event":"online".*"name":"hello"' "the new run's process:event"
expect '^PUBLISHED py-watcher:hello seq=1$' "its own event"
expect '^DONE$' "DONE"
deadline=$((SECONDS + 20))
until grep -q '"topic":"py-watcher:hello"' "$work/events.out"; do
  if ! kill -0 "$events_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    cat "$work/events.out" "$work/events.err"; echo "zpm events did not show py-watcher:hello"; exit 1
  fi
  sleep 0.05
done
grep '"topic":"py-watcher:hello"' "$work/events.out"
grep -q '"source":"py-watcher"' "$work/events.out"
stop "$events_pid"
events_pid=""
$zpm kill
echo "python interop: ok"
