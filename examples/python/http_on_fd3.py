"""An HTTP server that serves on the socket zpm passes it (systemd socket activation):

    zpm start examples/python/http_on_fd3.py --listen 8000 -i 4 --wait-ready
    curl localhost:8000          # answered by one of the 4 pids
    zpm reload http_on_fd3       # each replaced, no request refused

It answers every GET with its pid (`/slow` after 0.3 s), says READY=1 on $NOTIFY_SOCKET
(unless NOT_READY is set: the tests' never-ready replacement), and on SIGTERM stops
accepting and finishes the requests in flight. Without zpm's socket (no `--listen`) it
binds 127.0.0.1:$PORT itself, as most programs do. Standard library only.
"""
import http.server
import os
import signal
import socket
import threading
import time

INHERITED = "LISTEN_FDS" in os.environ
if INHERITED:
    # systemd's rules: the sockets are for this pid, from fd 3.
    assert os.environ["LISTEN_PID"] == str(os.getpid()), "LISTEN_PID is not my pid"
    assert os.environ["LISTEN_FDS"] == "1", f"LISTEN_FDS={os.environ['LISTEN_FDS']}"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        if self.path == "/slow":
            time.sleep(0.3)
        body = str(os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if INHERITED:
    server = http.server.ThreadingHTTPServer(("", 0), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = socket.socket(fileno=3)
else:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
server.daemon_threads = False  # server_close() waits for requests in flight
# Non-blocking, as real servers have it: the queue is shared, so another instance may take
# the connection this one was woken for, and a blocking accept would hang past SIGTERM.
server.socket.setblocking(False)
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
if "NOTIFY_SOCKET" in os.environ and "NOT_READY" not in os.environ:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.sendto(b"STATUS=serving\nREADY=1", os.environ["NOTIFY_SOCKET"])
print("serving", flush=True)
# shutdown() waits for the loop's next poll: 0.5 s by default, per instance stopped.
server.serve_forever(poll_interval=0.05)
server.server_close()
