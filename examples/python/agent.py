#!/usr/bin/env python3
"""A third-party zpm agent in Python, with nothing but pyzmq and msgpack.

It joins God as an agent with a role of its own, watches `process:event` and apps'
`process:msg` messages on the bus,
lists and restarts apps over rpc, and publishes an event of its own through God — the
whole of PROTOCOL.md's "Writing an agent", in one loop over two DEALER sockets.

Usage:
    agent.py [--role py-watcher] [--restart NAME] [--topic TOPIC] [--await-msg NAME]
             [--once] [--timeout 10]
             [--home DIR | --rpc ENDPOINT --bus ENDPOINT] [--host NAME]

Endpoints: `--rpc` and `--bus` (any ZeroMQ endpoint, e.g. the ipc sockets a tunnel
exposes) default to ipc://HOME/rpc.sock and ipc://HOME/bus.sock, HOME being `--home`, else
$ZPM_HOME, else ~/.zpm. The daemon must be running (`zpm ping` starts it).

What it prints on stdout, one line each (diagnostics go to stderr):
    HELLO role=… host=… god_pid=…        God accepted our `agent.hello` (again on reconnects)
    LISTED role=… connected=True         `agents.list` shows us
    SUBSCRIBED process:                  the bus has our subscription in place
    APPS 0:hello(online) 1:web(stopped)  `app.list`
    RESTARTED NAME: 0:hello pid=… …      `app.restart` replied
    EVENT TOPIC seq=N SOURCE@HOST {json} every event the bus sends us
    PUBLISHED TOPIC seq=N                God relayed our own event
    DONE                                 --once finished

`--once` (for CI) does everything once and exits 0 when it has seen the `process:event`
events of its own restart (`restart`, then `online` with the new pid) and published its
event (and, with `--await-msg NAME`, a `process:msg` that app NAME sent with Node's
`process.send({type: 'process:msg', data})`); it exits 1 with a message on any error, or when `--timeout` seconds run out first.
Our event is published only once some bus subscriber wants its topic (God tells agents
which topics have subscribers: `bus.interest`), so `--once` needs e.g.
`zpm events py-watcher:` running; `--topic ''` publishes nothing. Without `--once` it
keeps printing events until God orders it to exit (`zpm kill`) or it gets Ctrl-C/SIGTERM.
"""
import argparse
import json
import os
import signal
import socket
import sys
import time

import msgpack
import zmq
from zmq.utils.monitor import recv_monitor_message

VERSION = 1  # the protocol version: `v` of every envelope, `protocol` in the hello
# God marks an agent down after 1.5 s without a heartbeat: beat three times in that span.
HEARTBEAT_S = 0.5
# The bus forgets a subscriber silent for 10 s; zpm's own subscribers beat every second.
BUS_HEARTBEAT_S = 1.0
# Our credit window: how many events, and how many bytes of events (topic + payload), the
# publisher may send before we give credit back. Events beyond it are dropped (and
# reported), so it must cover what can arrive between two returns.
CREDIT = 256
CREDIT_BYTES = 1 << 20


class Failure(Exception):
    """Ends the agent with exit status 1 and this message."""


def log(message):
    print(f"agent.py: {message}", file=sys.stderr, flush=True)


def say(line):
    # Flushed at once: CI reads these lines while we run.
    print(line, flush=True)


def as_json(value):
    """msgpack data as compact JSON: `bin` (log bytes) as text when it is UTF-8."""

    def plain(v):
        if isinstance(v, bytes):
            return v.decode("utf-8", "backslashreplace")
        if isinstance(v, dict):
            return {str(plain(k)): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"))


def resident_bytes():
    """This process's RSS for the heartbeat (`zpm agents` shows it); None if unknown."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class Agent:
    def __init__(self, role, host, rpc_endpoint, bus_endpoint):
        self.role, self.host = role, host
        self.rpc_endpoint, self.bus_endpoint = rpc_endpoint, bus_endpoint
        self.context = zmq.Context()
        self.next_id = 1
        self.waiting = set()  # ids of calls we still wait for
        self.replies = {}  # id -> reply map, for `call`
        self.on_reply = {}  # id -> function, for replies handled as they come (hello)
        self.registered = False  # God accepted the hello of the current connection
        self.bus_pending = False  # the bus connection is up and not yet subscribed
        self.god_pid = None
        self.interest = []  # topic prefixes with bus subscribers, from God's bus.interest
        self.exit_ordered = False  # God pushed agent.exit
        self.consumed = self.consumed_bytes = 0  # events not yet given back as credit
        self.last_seq = {}  # (source, topic) -> seq, to notice lost events
        self.events = []  # (topic, event map) of everything received, in order
        self.seqs = {}  # topic -> seq of the events we publish
        # The bus never acknowledges a subscribe. But God tells every agent the prefixes
        # the bus's subscribers have (`bus.interest`), so we add one nobody else has: when
        # it shows up there, our subscription is in place and no event can slip by.
        self.marker_prefix = f"{role}:subscribed:{host}:{os.getpid()}"
        self.prefixes = ["process:", self.marker_prefix]

        # The guard in front of God's sockets gives every *connection* its own identity,
        # so after a reconnect (libzmq reconnects by itself) God sees a stranger: we must
        # say hello again, and subscribe again. Socket monitors tell us when a connection
        # is up; they are set before connect so the first one is not missed.
        watched = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
        self.rpc = self.context.socket(zmq.DEALER)
        self.rpc_monitor = self.rpc.get_monitor_socket(watched)
        self.bus = self.context.socket(zmq.DEALER)
        self.bus_monitor = self.bus.get_monitor_socket(watched)
        for sock, endpoint in ((self.rpc, rpc_endpoint), (self.bus, bus_endpoint)):
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
        self.poller = zmq.Poller()
        for sock in (self.rpc, self.bus, self.rpc_monitor, self.bus_monitor):
            self.poller.register(sock, zmq.POLLIN)
        now = time.monotonic()
        self.next_heartbeat = now
        self.next_bus_heartbeat = now + BUS_HEARTBEAT_S

    # -- sending ------------------------------------------------------------------------

    def send(self, sock, message):
        """Never blocks: libzmq queues while disconnected, and a full queue must not stall
        the heartbeats. False if the message could not be queued."""
        try:
            sock.send(msgpack.packb(message), zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def request(self, method, params, on_reply=None):
        request_id = self.next_id
        self.next_id += 1
        # DEALER: one frame, the payload. An `id` makes it a request: God replies with it.
        message = {"v": VERSION, "id": request_id, "method": method, "params": params}
        if not self.send(self.rpc, message):
            raise Failure(f"cannot send {method}: the rpc queue is full (God unreachable)")
        self.waiting.add(request_id)
        if on_reply:
            self.on_reply[request_id] = on_reply
        return request_id

    def notify(self, method, params):
        # No `id`: a notification, which God never answers (not even with an error).
        self.send(self.rpc, {"v": VERSION, "method": method, "params": params})

    def call(self, method, params, deadline):
        """A request and its result; raises Failure on an error reply or at the deadline."""
        request_id = self.request(method, params)
        try:
            self.wait_until(lambda: request_id in self.replies, deadline, f"the reply to {method}")
        finally:
            self.waiting.discard(request_id)
        reply = self.replies.pop(request_id)
        if "error" in reply:
            error = reply["error"]
            raise Failure(f"{method} failed: {error.get('code')}: {error.get('message')}")
        return reply.get("result")

    def say_hello(self):
        # `holding` lists apps this agent runs for God (the spawner's job); ours is empty.
        params = {
            "agent": {
                "role": self.role,
                "host": self.host,
                "pid": os.getpid(),
                "version": "agent.py/1",
                "protocol": VERSION,
            },
            "holding": [],
        }
        self.request("agent.hello", params, self.hello_replied)

    def hello_replied(self, reply):
        if "error" in reply:
            # e.g. bad_params for a role name God refuses, version for another protocol.
            error = reply["error"]
            raise Failure(f"God refused our hello: {error.get('code')}: {error.get('message')}")
        self.registered = True
        self.god_pid = reply["result"]["pid"]
        say(f"HELLO role={self.role} host={self.host} god_pid={self.god_pid}")
        self.subscribe_if_pending()

    def subscribe_if_pending(self):
        # Subscribe only once God has replied to our hello. The hello handler pushes us
        # the interest of that moment; had we subscribed meanwhile, that push could be
        # older than the one announcing our subscription and arrive after it.
        if self.bus_pending and self.registered:
            self.bus_pending = False
            self.subscribe()

    def subscribe(self):
        # Replaces any earlier subscription of this connection, with a fresh credit window.
        self.consumed = self.consumed_bytes = 0
        self.send(
            self.bus,
            {
                "t": "subscribe",
                "v": VERSION,
                "prefixes": self.prefixes,
                "credit": CREDIT,
                "credit_bytes": CREDIT_BYTES,
            },
        )

    def publish(self, topic, data, deadline):
        """Publishes an event of ours on the bus, relayed by God.

        We build the whole event envelope ourselves (our own `source` and a `seq` counting
        per topic from 1) and God re-publishes its bytes unchanged. Sent as a request rather
        than the usual notification so that God's reply confirms it went to the bus."""
        seq = self.seqs[topic] = self.seqs.get(topic, 0) + 1
        event = {
            "v": VERSION,
            "seq": seq,
            "at": int(time.time() * 1000),
            "source": self.role,
            "host": self.host,
            "data": data,
        }
        # msgpack.packb writes bytes as `bin`, which `payload` must be.
        self.call("bus.publish", {"topic": topic, "payload": msgpack.packb(event)}, deadline)
        say(f"PUBLISHED {topic} seq={seq}")

    def wants(self, topic):
        return any(topic.startswith(prefix) for prefix in self.interest)

    # -- receiving ----------------------------------------------------------------------

    def on_rpc(self, frames):
        message = msgpack.unpackb(frames[-1], raw=False)
        if not isinstance(message, dict):
            return
        if message.get("id") is not None:  # a reply; pushes never carry an id
            request_id = message["id"]
            if request_id not in self.waiting:
                return  # its call gave up already
            handler = self.on_reply.pop(request_id, None)
            if handler:
                self.waiting.discard(request_id)
                handler(message)
            else:
                self.replies[request_id] = message
            return
        method, params = message.get("method"), message.get("params") or {}
        if method == "bus.interest":
            # Sent right after our hello (before its reply!) and whenever it changes.
            self.interest = list(params.get("prefixes") or [])
            log(f"bus.interest: {self.interest}")
        elif method == "agent.exit":
            # `zpm kill`: God is stopping everything and wants its agents gone.
            log("God ordered this agent to exit")
            self.exit_ordered = True
        else:
            # A newer God may push more: ignore what we do not know.
            log(f"ignoring push {method!r}")

    def on_bus(self, frames):
        if len(frames) != 2:
            log(f"ignoring a bus message of {len(frames)} frames")
            return
        topic = frames[0].decode("utf-8", "replace")
        if topic == "bus:resubscribe":
            # The publisher forgot us (silence); it sent this without credit. A subscribe
            # starts a fresh window, so nothing of the old one is owed.
            log("the bus asks us to subscribe again")
            self.bus_pending = True
            self.subscribe_if_pending()
            return
        # Every other event used one credit and its size in byte credit (bus:dropped
        # included). Give credit back in batches, before a quarter of *either* window is
        # used, so the publisher never runs dry while we keep up.
        self.consumed += 1
        self.consumed_bytes += len(frames[0]) + len(frames[1])
        if self.consumed >= CREDIT // 4 or self.consumed_bytes >= CREDIT_BYTES // 4:
            self.send(self.bus, {"t": "credit", "n": self.consumed})
            self.consumed = self.consumed_bytes = 0
        try:
            event = msgpack.unpackb(frames[1], raw=False)
        except (ValueError, msgpack.UnpackException) as e:
            log(f"ignoring an undecodable event on {topic}: {e}")
            return
        if topic == "bus:dropped":
            log(f"the bus dropped events for us (out of credit): {event.get('data')}")
            return
        source, seq = event.get("source"), event.get("seq", 0)
        last = self.last_seq.get((source, topic))
        if last is not None and seq > last + 1:
            log(f"lost {seq - last - 1} events of {source} on {topic}")
        self.last_seq[(source, topic)] = seq
        self.events.append((topic, event))
        say(f"EVENT {topic} seq={seq} {source}@{event.get('host')} {as_json(event.get('data'))}")

    def on_monitor(self, monitor):
        event = recv_monitor_message(monitor)
        connected = event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED
        if monitor is self.rpc_monitor:
            self.registered = False
            if connected:
                self.say_hello()  # every new connection is a new peer to God
            else:
                log("lost the rpc connection to God; will say hello again")
        else:
            # A new connection: the publisher forgot us with the old one.
            self.bus_pending = connected
            if connected:
                self.subscribe_if_pending()
            else:
                log("lost the bus connection; will subscribe again")

    def beat(self):
        now = time.monotonic()
        if now >= self.next_heartbeat:
            rss = resident_bytes()
            # params {rss} or nil — not {}: that does not decode, and God ignores it.
            self.notify("agent.heartbeat", {"rss": rss} if rss is not None else None)
            self.next_heartbeat = now + HEARTBEAT_S
        if now >= self.next_bus_heartbeat:
            self.send(self.bus, {"t": "heartbeat"})
            self.next_bus_heartbeat = now + BUS_HEARTBEAT_S

    def pump(self, until):
        """Serves both sockets and the heartbeats once, waiting at most until `until`
        (monotonic seconds). Everything happens here, so nothing can starve the beats."""
        self.beat()
        wake = min(until, self.next_heartbeat, self.next_bus_heartbeat)
        ready = dict(self.poller.poll(max(0.0, wake - time.monotonic()) * 1000))
        for sock, handle in (
            (self.rpc_monitor, self.on_monitor),
            (self.bus_monitor, self.on_monitor),
            (self.rpc, lambda s: self.on_rpc(s.recv_multipart())),
            (self.bus, lambda s: self.on_bus(s.recv_multipart())),
        ):
            if sock in ready:
                # Take what is there (bounded, so the other sockets get their turn).
                for _ in range(1000):
                    if not sock.poll(0, zmq.POLLIN):
                        break
                    handle(sock)
        self.beat()

    def wait_until(self, done, deadline, what):
        while not done():
            if self.exit_ordered:
                raise Failure(f"God ordered this agent to exit while waiting for {what}")
            if time.monotonic() >= deadline:
                raise Failure(f"timed out waiting for {what}")
            self.pump(deadline)

    def close(self):
        # Tell the bus we leave (it would also forget us on disconnect); God has no
        # goodbye: it marks us down after 1.5 s without a heartbeat.
        self.send(self.bus, {"t": "unsubscribe"})
        self.bus.setsockopt(zmq.LINGER, 100)
        for sock in (self.rpc_monitor, self.bus_monitor):
            sock.close(0)
        self.rpc.close()
        self.bus.close()
        self.context.term()


def restart_seen(agent, since, infos):
    """True once the events from index `since` on hold, for every restarted app, a
    `restart` and then an `online` of its new pid (the spawner's order)."""
    for info in infos:
        restarted = False
        for topic, event in agent.events[since:]:
            data = event.get("data") or {}
            if topic != "process:event" or data.get("id") != info["id"]:
                continue
            if data.get("event") == "restart":
                restarted = True
            elif restarted and data.get("event") == "online" and data.get("pid") == info.get("pid"):
                break
        else:
            return False
    return True


def run(args):
    home = args.home or os.environ.get("ZPM_HOME") or os.path.expanduser("~/.zpm")
    rpc = args.rpc or f"ipc://{home}/rpc.sock"
    bus = args.bus or f"ipc://{home}/bus.sock"
    topic = f"{args.role}:hello" if args.topic is None else args.topic
    agent = Agent(args.role, args.host, rpc, bus)
    deadline = time.monotonic() + args.timeout
    try:
        agent.wait_until(lambda: agent.registered, deadline, f"God to accept our hello at {rpc}")

        # God lists us while we heartbeat; look as any client would.
        me = [
            a
            for a in agent.call("agents.list", None, deadline)
            if (a["role"], a["host"], a["pid"]) == (args.role, args.host, os.getpid())
        ]
        if not me:
            raise Failure("agents.list does not list us")
        say(f"LISTED role={args.role} host={args.host} pid={os.getpid()} "
            f"connected={me[0]['connected']}")

        # Before restarting anything: its events must not happen before we can see them.
        agent.wait_until(
            lambda: agent.marker_prefix in agent.interest, deadline, f"our subscription at {bus}"
        )
        say("SUBSCRIBED process:")

        apps = agent.call("app.list", None, deadline)
        listed = " ".join(f"{a['id']}:{a['name']}({a['status']})" for a in apps)
        say(f"APPS {listed or '(none)'}")

        if args.restart:
            since = len(agent.events)
            infos = agent.call("app.restart", {"target": args.restart}, deadline)
            rows = " ".join(
                f"{i['id']}:{i['name']} pid={i.get('pid')} restarts={i['restarts']} "
                f"status={i['status']}"
                for i in infos
            )
            say(f"RESTARTED {args.restart}: {rows}")
            if args.once:
                # God replies once the spawner reported the new run; the spawner's events
                # travel on their own and may come later: wait for them.
                what = f"the process:event events of restarting {args.restart}"
                agent.wait_until(lambda: restart_seen(agent, since, infos), deadline, what)

        data = {"message": f"hello from {args.role}", "pid": os.getpid(), "apps": len(apps)}
        if args.once and args.await_msg:
            agent.wait_until(
                lambda: any(
                    t == "process:msg" and (e.get("data") or {}).get("name") == args.await_msg
                    for t, e in agent.events
                ),
                deadline,
                f"a process:msg from {args.await_msg}",
            )
        if args.once:
            if topic:
                what = (f"a bus subscriber for {topic} (we publish only what is wanted; "
                        f"try `zpm events {topic}`)")
                agent.wait_until(lambda: agent.wants(topic), deadline, what)
                agent.publish(topic, data, deadline)
            say("DONE")
            return 0

        # Serve until God orders us out; our event goes out once somebody wants it.
        while not agent.exit_ordered:
            if topic and topic not in agent.seqs and agent.registered and agent.wants(topic):
                agent.publish(topic, data, time.monotonic() + 10)
            agent.pump(time.monotonic() + 1)
        return 0
    finally:
        agent.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    arg = parser.add_argument
    arg("--role", default="py-watcher", help="our role: 1-32 of a-z 0-9 _ - (default py-watcher)")
    arg("--host", default=socket.gethostname(), help="host name we report (default: ours)")
    arg("--home", help="zpm home (default $ZPM_HOME, else ~/.zpm)")
    arg("--rpc", help="God's rpc endpoint (default ipc://HOME/rpc.sock)")
    arg("--bus", help="God's bus endpoint (default ipc://HOME/bus.sock)")
    arg("--restart", metavar="NAME", help="restart this app (id, name, namespace or all)")
    arg("--topic", help="topic of our own event (default ROLE:hello; '' = publish none)")
    arg("--await-msg", metavar="NAME", help="with --once: also wait for a process:msg from app NAME")
    arg("--once", action="store_true", help="do everything once, then exit (for CI)")
    arg("--timeout", type=float, default=10.0,
        help="seconds to join God, and with --once to do everything (default 10)")
    args = parser.parse_args()
    # SIGTERM ends us like Ctrl-C: through `finally`, closing the sockets.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(run(args))
    except Failure as failure:
        sys.exit(f"agent.py: {failure}")
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
