#!/usr/bin/env bash
# Runs examples/python/ping.py (pyzmq + msgpack) against the rpc crate's example server and
# against the real zpm daemon.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet -p zpm-rpc --example ping_server
cargo build --quiet -p zpm
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
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
ZPM_HOME="$work/home" ./target/debug/zpm kill
echo "python interop: ok"
