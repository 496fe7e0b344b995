#!/usr/bin/env python3
"""Call zpm's `ping` method over DEALER and over REQ using only pyzmq and msgpack.

Usage: ping.py [ENDPOINT]   (default: ipc://$ZPM_HOME/rpc.sock, ZPM_HOME defaulting to ~/.zpm)
Exits non-zero if either call fails or times out. See PROTOCOL.md for the wire format.
"""
import os
import sys

import msgpack
import zmq

VERSION = 1
TIMEOUT_MS = 5000


def endpoint():
    if len(sys.argv) > 1 and sys.argv[1]:
        return sys.argv[1]
    home = os.environ.get("ZPM_HOME", os.path.expanduser("~/.zpm"))
    return f"ipc://{home}/rpc.sock"


def request(request_id, method, params=None):
    # id is an unsigned integer; params a map (empty when the method takes none).
    return msgpack.packb(
        {"v": VERSION, "id": request_id, "method": method, "params": params or {}}
    )


def result_of(payload, request_id):
    reply = msgpack.unpackb(payload, raw=False)
    if reply.get("id") != request_id:
        sys.exit(f"reply id {reply.get('id')!r} does not match request id {request_id}")
    if "error" in reply:
        sys.exit(f"error reply: {reply['error']['code']}: {reply['error']['message']}")
    return reply["result"]


def open_socket(context, kind, address):
    sock = context.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    sock.connect(address)
    return sock


def ping_over_dealer(context, address):
    sock = open_socket(context, zmq.DEALER, address)
    sock.send(request(1, "ping"))  # DEALER: one frame, no empty delimiter
    return result_of(sock.recv(), 1)


def ping_over_req(context, address):
    sock = open_socket(context, zmq.REQ, address)
    sock.send(request(2, "ping"))  # REQ adds the empty delimiter frame itself
    return result_of(sock.recv(), 2)


def main():
    address = endpoint()
    context = zmq.Context.instance()
    try:
        print("DEALER:", ping_over_dealer(context, address))
        print("REQ:   ", ping_over_req(context, address))
    except zmq.Again:
        sys.exit(f"no reply from {address} within {TIMEOUT_MS} ms")


if __name__ == "__main__":
    main()
