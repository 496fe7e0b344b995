#!/usr/bin/env bash
# Runs examples/python/ping.py (pyzmq + msgpack) against the rpc crate's example server.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet -p zpm-rpc --example ping_server
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

endpoint="ipc://$work/rpc.sock"
./target/debug/examples/ping_server "$endpoint" >"$work/server.log" 2>&1 &
server_pid=$!

deadline=$((SECONDS + 30))
until [ -S "$work/rpc.sock" ]; do
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server.log"; echo "ping_server exited"; exit 1; fi
  if [ "$SECONDS" -ge "$deadline" ]; then echo "ping_server did not bind in 30 s"; exit 1; fi
  sleep 0.05
done

output=$(python3 examples/python/ping.py "$endpoint")
echo "$output"
grep -q "^DEALER: .*'pong'" <<<"$output"
grep -q "^REQ: .*'pong'" <<<"$output"
echo "python interop: ok"
