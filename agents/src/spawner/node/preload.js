'use strict';

// zpm preload for Node apps run in cluster mode or on sockets zpm holds.
//
// The spawner starts every instance as `node --require <this file> app.js`.
// It binds the app's listening sockets once and shares them with all the
// instances, so an unchanged `server.listen(8000)` must not bind: it must
// listen on the socket zpm holds. This file patches net.Server.prototype.listen
// (http, https, tls and express servers all inherit it) to do that.
//
// Wire contract with the spawner (Node's own IPC channel, JSON lines):
//   env ZPM_LISTEN  = [{"fd":3,"host":"::","port":8000},{"fd":4,"path":"/x.sock"}]
//                     sockets inherited as file descriptors; each fd is used
//                     once, by the first server listening on that port/path.
//   env ZPM_CLUSTER = 1: a port not in ZPM_LISTEN is asked of the spawner.
//   child -> spawner {"cmd":"NODE_ZPM_LISTEN","port":8000,"host":null}
//                    (also sent, in cluster mode, for a port in ZPM_LISTEN
//                    whose fd a server already took, with that entry's host:
//                    Node cannot dup a descriptor, the spawner can, by sending
//                    the socket it holds once more)
//   spawner -> child {"cmd":"NODE_HANDLE","type":"net.Native",
//                     "msg":{"cmd":"NODE_ZPM_SOCKET","port":8000,"host":null}}
//                    with the listening fd attached (SCM_RIGHTS); Node itself
//                    answers {"cmd":"NODE_HANDLE_ACK"}.
//                 or {"cmd":"NODE_ZPM_SOCKET","port":8000,"host":null,
//                     "error":"cannot bind ...","code":"EADDRINUSE"}
//   child -> spawner {"cmd":"NODE_ZPM_LISTENING","port":8000}  (or "path")
//                    once per server, after its 'listening' event.
// Messages whose cmd starts with NODE_ are Node-internal: they never reach the
// app's process.on('message'), so the app's own IPC use is left as it was.

const net = require('net');
const os = require('os');
const path = require('path');
const { isMainThread } = require('worker_threads');

const REQUEST_CMD = 'NODE_ZPM_LISTEN';
const ANSWER_CMD = 'NODE_ZPM_SOCKET';
const LISTENING_CMD = 'NODE_ZPM_LISTENING';
const STOP_SIGNALS = ['SIGINT', 'SIGTERM'];
// How often idle keep-alive connections are closed while draining: a
// connection whose request was in flight at the signal becomes idle when the
// response is done, and would otherwise hold the server open for
// keepAliveTimeout (5 s by default).
const DRAIN_POLL_MS = 100;
// Marks the patched listen so that loading this file twice (from two paths,
// or once via NODE_OPTIONS) does not wrap it twice.
const PATCHED = Symbol.for('zpm.preload.listen');

const originalListen = net.Server.prototype.listen;
// Captured now so that an app replacing process.send cannot see or break the
// shim's messages.
const sendOnChannel = typeof process.send === 'function' ? process.send.bind(process) : null;

// 'port:8000' or 'path:/abs/x.sock' -> { fd, host, claimed }
let heldSockets = new Map();
let clusterMode = false;
// key -> requests waiting for the spawner's answer, oldest first.
const pendingByKey = new Map();
// server -> its request waiting for the spawner's answer.
const pendingByServer = new Map();
// Servers listening (or about to) on a zpm socket: the ones a stop drains.
const zpmServers = new Set();
const announced = new WeakSet();
let keepAliveTimer = null;
let stopHandlersInstalled = false;
let stopping = false;

install();

function install() {
  // --require runs in worker threads too; they share the fds but have no IPC
  // channel and get no signals: sockets are for the main thread.
  if (!isMainThread) return;
  // A worker of the app's own cluster module gets its sockets from the app's
  // primary (whose listen is patched), not from zpm.
  if (process.env.NODE_UNIQUE_ID) return;
  heldSockets = readHeldSockets(process.env.ZPM_LISTEN);
  clusterMode = isOn(process.env.ZPM_CLUSTER);
  if (heldSockets.size === 0 && !clusterMode) return;
  if (meantForAnotherProcess()) return;
  if (net.Server.prototype.listen[PATCHED]) return;
  net.Server.prototype.listen = listen;
  // Answers to NODE_ZPM_LISTEN. Listening for Node's internal messages does
  // not ref the channel, unlike a 'message' listener.
  process.on('internalMessage', onInternalMessage);
}

function isOn(value) {
  return Boolean(value) && value !== '0';
}

// A process the app forks (child_process.fork copies execArgv, so it loads
// this file too) inherits ZPM_LISTEN, but its fd 3 is its own IPC channel, and
// its channel leads to the app, not to zpm. zpm sets LISTEN_PID to the
// instance's pid whenever it loads this file (systemd's rule for exactly this
// case): another pid there means the variables are an ancestor's.
function meantForAnotherProcess() {
  const listenPid = process.env.LISTEN_PID;
  return Boolean(listenPid) && listenPid !== String(process.pid);
}

function readHeldSockets(text) {
  const held = new Map();
  if (!text) return held;
  let list;
  try {
    list = JSON.parse(text);
  } catch (err) {
    warn(`ignoring ZPM_LISTEN, not JSON: ${err.message}`);
    return held;
  }
  if (!Array.isArray(list)) {
    warn('ignoring ZPM_LISTEN, not a JSON array');
    return held;
  }
  for (const item of list) {
    const key = heldSocketKey(item);
    if (key === null) {
      warn(`ignoring ZPM_LISTEN entry ${JSON.stringify(item)}`);
      continue;
    }
    const host = typeof item.host === 'string' && item.host !== '' ? item.host : null;
    held.set(key, { fd: item.fd, host, claimed: false });
  }
  return held;
}

function heldSocketKey(item) {
  if (!item || !Number.isInteger(item.fd) || item.fd < 0) return null;
  if (typeof item.path === 'string' && item.path !== '') return pathKey(item.path);
  const port = toPort(item.port);
  return port === null ? null : portKey(port);
}

// Ports are matched on the number alone, whatever the host: zpm binds the
// address it was configured with, and an app's listen(8000, 'localhost')
// means "my port 8000" in the same way as listen(8000).
function portKey(port) {
  return `port:${port}`;
}

// Relative socket paths are relative to the cwd, as when Node binds them.
// Abstract sockets (leading NUL) are not file names.
function pathKey(socketPath) {
  return `path:${socketPath[0] === '\0' ? socketPath : path.resolve(socketPath)}`;
}

// A port zpm could hold: an integer 1..65535, given as a number or a numeric
// string like Node accepts. Anything else (0, absent, invalid) is left to Node.
function toPort(value) {
  if (typeof value !== 'number' && typeof value !== 'string') return null;
  if (typeof value === 'string' && value.trim() === '') return null;
  const port = Number(value);
  return Number.isInteger(port) && port > 0 && port <= 65535 ? port : null;
}

function listen(...args) {
  const idle = this instanceof net.Server && !this._handle;
  // A new listen() replaces one still waiting for the spawner, as it replaces
  // one still resolving its host in Node.
  if (idle) cancelPending(this);
  const target = idle ? describeListen(args) : null;
  if (target === null) return originalListen.apply(this, args);

  const held = heldSockets.get(target.key);
  if (held && !held.claimed) return listenOnHeldSocket(this, held, target);

  if (clusterMode && target.port !== null && canTalkToSpawner()) {
    // A held port is asked with the host it is held on, so that the spawner
    // finds the socket it holds rather than binding another one.
    if (held) return askSpawner(this, target, held.host);
    if (!target.exclusive) return askSpawner(this, target, target.host);
  }

  // Not ours to share: bind as Node would (for a port or path zpm holds whose
  // fd is taken, that gives the EADDRINUSE a second bind gets without zpm).
  return originalListen.apply(this, args);
}
listen[PATCHED] = true;

// What a listen() call asks for, when it names a port or a unix socket path:
// { key, port, host, path, backlog, exclusive, signal, callback }. null for the
// forms that are passed to Node untouched: no port or port 0 (a random port),
// a handle, a server or an fd.
function describeListen(args) {
  const last = args[args.length - 1];
  const callback = typeof last === 'function' ? last : null;
  const rest = callback ? args.slice(0, -1) : args;
  const first = rest[0];
  if (first !== null && typeof first === 'object') return describeOptions(first, rest, callback);
  if (typeof first === 'number' || (typeof first === 'string' && isNumeric(first))) {
    const host = typeof rest[1] === 'string' && rest[1] !== '' ? rest[1] : null;
    return tcpTarget(first, host, backlogFrom(rest), false, undefined, callback);
  }
  if (typeof first === 'string' && first !== '') {
    return unixTarget(first, backlogFrom(rest), undefined, callback);
  }
  return null;
}

function describeOptions(options, rest, callback) {
  if (options._handle || options.handle) return null;
  if (typeof options.fd === 'number' && options.fd >= 0) return null;
  const backlog = options.backlog || backlogFrom(rest);
  // As in Node, a 'port' key wins over 'path', even when it is undefined.
  if ('port' in options) {
    const host = typeof options.host === 'string' && options.host !== '' ? options.host : null;
    return tcpTarget(options.port, host, backlog, Boolean(options.exclusive), options.signal, callback);
  }
  if (typeof options.path === 'string' && options.path !== '') {
    return unixTarget(options.path, backlog, options.signal, callback);
  }
  return null;
}

function tcpTarget(portValue, host, backlog, exclusive, signal, callback) {
  const port = toPort(portValue);
  if (port === null) return null;
  return { key: portKey(port), port, host, path: null, backlog, exclusive, signal, callback };
}

function unixTarget(socketPath, backlog, signal, callback) {
  return {
    key: pathKey(socketPath), port: null, host: null, path: socketPath,
    backlog, exclusive: false, signal, callback,
  };
}

function isNumeric(text) {
  return text.trim() !== '' && Number(text) >= 0;
}

// listen(port, backlog) / listen(port, host, backlog) / listen(path, backlog)
function backlogFrom(rest) {
  for (const value of rest.slice(1, 3)) {
    if (typeof value === 'number' && value >= 0) return value;
  }
  return undefined;
}

// The arguments for Node's own listen: the socket to listen on, then the
// user's backlog and callback (Node takes the fd form's backlog from the
// arguments only, not from the options object).
function nodeListenArgs(socket, target) {
  const args = [socket];
  if (target.backlog !== undefined) args.push(target.backlog);
  if (target.callback) args.push(target.callback);
  return args;
}

function listenOnHeldSocket(server, held, target) {
  // Node closes the fd when this server closes, and two servers on one fd do
  // not work (libuv refuses the second with EEXIST): the fd serves one server
  // only, later ones ask the spawner for a copy.
  held.claimed = true;
  adoptServer(server, target);
  const socket = { fd: held.fd };
  if (target.signal !== undefined) socket.signal = target.signal;
  return originalListen.apply(server, nodeListenArgs(socket, target));
}

// Start using a zpm socket for this server: remember it for a graceful stop,
// tell the spawner once it listens.
function adoptServer(server, target) {
  // Node reports a server listening on an fd as address() null; the path is
  // what a unix server listening by name reports.
  if (target.path !== null) server._pipeName = target.path;
  zpmServers.add(server);
  if (!server.listeners('close').includes(forgetServer)) server.on('close', forgetServer);
  if (!announced.has(server) && !server.listeners('listening').includes(announceListening)) {
    server.once('listening', announceListening);
  }
  installStopHandlers();
}

function forgetServer() {
  zpmServers.delete(this);
}

function announceListening() {
  const server = this;
  if (announced.has(server) || !zpmServers.has(server)) return;
  announced.add(server);
  // After the app's own 'listening' listeners, which may still be setting up.
  process.nextTick(() => {
    if (!server.listening) return;
    const address = server.address();
    if (typeof address === 'string') sendToSpawner({ cmd: LISTENING_CMD, path: address });
    else if (address) sendToSpawner({ cmd: LISTENING_CMD, port: address.port });
  });
}

// ---------------------------------------------------------------------------
// Asking the spawner for a socket

function canTalkToSpawner() {
  return sendOnChannel !== null && process.connected === true;
}

function sendToSpawner(message, onError) {
  if (!canTalkToSpawner()) return false;
  // A callback makes a failed send report to it instead of emitting 'error'
  // on process, which would crash an app that has no handler for it.
  sendOnChannel(message, (err) => {
    if (err && onError) onError(err);
  });
  return true;
}

function askSpawner(server, target, host) {
  const request = { server, target, cancel: null };
  request.cancel = () => dropRequest(request);
  enqueue(request);
  adoptServer(server, target);
  // The app may close the server (or abort its signal) before the answer.
  server.once('close', request.cancel);
  watchAbortSignal(request);
  const message = { cmd: REQUEST_CMD, port: target.port, host };
  sendToSpawner(message, (err) => failRequest(request, err));
  return server;
}

function watchAbortSignal(request) {
  const signal = request.target.signal;
  if (!signal || typeof signal.addEventListener !== 'function') return;
  const closeServer = () => request.server.close();
  if (signal.aborted) process.nextTick(closeServer);
  else signal.addEventListener('abort', closeServer, { once: true });
}

function enqueue(request) {
  const key = request.target.key;
  if (!pendingByKey.has(key)) pendingByKey.set(key, []);
  pendingByKey.get(key).push(request);
  pendingByServer.set(request.server, request);
  holdProcessOpen();
}

function dequeue(request) {
  const queue = pendingByKey.get(request.target.key) || [];
  const index = queue.indexOf(request);
  if (index !== -1) queue.splice(index, 1);
  if (queue.length === 0) pendingByKey.delete(request.target.key);
  if (pendingByServer.get(request.server) === request) pendingByServer.delete(request.server);
  request.server.removeListener('close', request.cancel);
  releaseProcessIfIdle();
}

function cancelPending(server) {
  const request = pendingByServer.get(server);
  if (request) dropRequest(request);
}

// The answer to a dropped request still arrives: it then finds no request
// and its socket is closed.
function dropRequest(request) {
  dequeue(request);
  zpmServers.delete(request.server);
}

// While an answer is pending nothing else may keep the process alive (the IPC
// channel is unref'd unless the app listens for messages): a referenced timer
// does. A 'disconnect' listener catches a spawner that goes away meanwhile
// (it refs the channel too, and Node unrefs it again when it is removed).
function holdProcessOpen() {
  if (keepAliveTimer !== null) return;
  keepAliveTimer = setInterval(() => {}, 1 << 30);
  process.on('disconnect', onSpawnerGone);
}

function releaseProcessIfIdle() {
  if (pendingByServer.size !== 0 || keepAliveTimer === null) return;
  clearInterval(keepAliveTimer);
  keepAliveTimer = null;
  process.removeListener('disconnect', onSpawnerGone);
}

function onSpawnerGone() {
  const err = new Error('zpm closed the IPC channel before answering a listen');
  err.code = 'ERR_IPC_CHANNEL_CLOSED';
  for (const request of Array.from(pendingByServer.values())) failRequest(request, err);
}

function failRequest(request, err) {
  if (pendingByServer.get(request.server) !== request) return;
  dropRequest(request);
  // Emitted like Node emits a listen error: asynchronously, and fatal when the
  // app has no 'error' listener.
  process.nextTick(() => request.server.emit('error', err));
}

function onInternalMessage(message, handle) {
  if (!message || message.cmd !== ANSWER_CMD) return;
  const request = oldestRequestFor(message);
  if (!request) {
    if (handle) closeQuietly(handle);
    return;
  }
  if (typeof message.error === 'string' || !handle) {
    if (handle) closeQuietly(handle);
    failRequest(request, errorFromAnswer(message, request.target));
    return;
  }
  dequeue(request);
  listenOnSharedSocket(request, handle);
}

// Answers come in the order of the requests; several servers may wait on
// one port.
function oldestRequestFor(message) {
  const port = toPort(message.port);
  const queue = port === null ? undefined : pendingByKey.get(portKey(port));
  return queue ? queue[0] : undefined;
}

function listenOnSharedSocket(request, handle) {
  const { server, target } = request;
  try {
    // Node listens on a raw TCP handle as it is (server.listen(handle)).
    originalListen.apply(server, nodeListenArgs(handle, target));
  } catch (err) {
    closeQuietly(handle);
    zpmServers.delete(server);
    process.nextTick(() => server.emit('error', err));
  }
}

// The error Node would give for a failed bind, with the spawner's message.
function errorFromAnswer(message, target) {
  const text = typeof message.error === 'string'
    ? message.error
    : 'zpm answered a listen without a socket';
  const err = new Error(text);
  err.code = typeof message.code === 'string' && message.code !== '' ? message.code : 'EADDRINUSE';
  const errno = os.constants.errno[err.code];
  if (typeof errno === 'number') err.errno = -errno;
  err.syscall = 'listen';
  if (target.host !== null) err.address = target.host;
  err.port = target.port;
  return err;
}

function closeQuietly(handle) {
  try {
    handle.close();
  } catch (err) {
    // Already closed: nothing to release.
  }
}

// ---------------------------------------------------------------------------
// Graceful stop
//
// The listening socket is shared: a stopping instance must stop accepting and
// finish what it has while the other instances keep accepting from the same
// queue. Node's default on SIGINT/SIGTERM (die at once) would cut requests in
// flight, so, unless the app handles the signal itself, close the zpm servers,
// let them drain and exit 0.

function installStopHandlers() {
  if (stopHandlersInstalled) return;
  stopHandlersInstalled = true;
  for (const signal of STOP_SIGNALS) process.on(signal, onStopSignal);
}

function onStopSignal(signal) {
  if (appHandlesSignal(signal)) return;
  // A second signal while draining: the default, at once.
  if (stopping) return raiseDefault(signal);
  for (const request of Array.from(pendingByServer.values())) dropRequest(request);
  const servers = Array.from(zpmServers).filter((server) => server.listening);
  if (servers.length === 0) return raiseDefault(signal);
  stopping = true;
  drainThenExit(servers);
}

function appHandlesSignal(signal) {
  return process.listeners(signal).some((listener) => listener !== onStopSignal);
}

// Without a listener Node restores the signal's default action, so sending it
// again ends the process the way it would have ended without the shim.
function raiseDefault(signal) {
  process.removeListener(signal, onStopSignal);
  process.kill(process.pid, signal);
}

function drainThenExit(servers) {
  let open = servers.length;
  const onClosed = () => {
    open -= 1;
    if (open === 0) process.exit(0);
  };
  for (const server of servers) {
    server.once('close', onClosed);
    if (isHttpServer(server)) server.prependListener('request', closeAfterResponse);
    server.close();
    closeIdleConnections(server);
  }
  const timer = setInterval(() => servers.forEach(closeIdleConnections), DRAIN_POLL_MS);
  timer.unref();
}

// http/https servers (Node >= 18.2) can close their idle keep-alive
// connections; older ones let them expire after keepAliveTimeout.
function isHttpServer(server) {
  return typeof server.closeIdleConnections === 'function';
}

function closeIdleConnections(server) {
  if (isHttpServer(server)) server.closeIdleConnections();
}

// A request arriving on a kept-alive connection while draining is served,
// and its connection closed after the response.
function closeAfterResponse(req, res) {
  if (!res.headersSent) res.setHeader('Connection', 'close');
}

function warn(text) {
  process.stderr.write(`zpm preload: ${text}\n`);
}
