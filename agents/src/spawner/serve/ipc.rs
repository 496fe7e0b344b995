//! Node's IPC channel (`NODE_CHANNEL_FD`, JSON lines), as PM2 gives every Node app: the
//! app's `process.send('ready')`, `process.send({type: 'process:msg', …})` and the
//! preload module's socket requests come in; `zpm msg` values and sockets (Node's
//! `NODE_HANDLE` message with the descriptor attached) go out. Lines are capped, the
//! outgoing queue is bounded, and nothing the app sends can block the spawner.

use super::links::RunSignal;
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, sendmsg, socketpair,
};
use serde_json::Value;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

/// Longest line read from an app; a longer one is skipped whole.
pub const MAX_LINE: usize = 64 * 1024;
/// Messages waiting to be written to one app.
const OUTGOING: usize = 16;

/// One message for the app, with a descriptor to pass along it.
struct Outgoing {
    line: Vec<u8>,
    fd: Option<Arc<OwnedFd>>,
}

/// Writes to one app's channel.
#[derive(Clone)]
pub struct IpcSender(mpsc::Sender<Outgoing>);

impl IpcSender {
    /// Queues a JSON line; false if the app's queue is full or the channel closed.
    pub fn send_json(&self, value: &Value) -> bool {
        self.send(value, None)
    }

    /// Queues a JSON line carrying `fd` (SCM_RIGHTS).
    pub fn send_with_fd(&self, value: &Value, fd: Arc<OwnedFd>) -> bool {
        self.send(value, Some(fd))
    }

    fn send(&self, value: &Value, fd: Option<Arc<OwnedFd>>) -> bool {
        let mut line = value.to_string().into_bytes();
        line.push(b'\n');
        self.0.try_send(Outgoing { line, fd }).is_ok()
    }
}

/// A new channel: our end, and the app's end to place in the child.
pub fn pair() -> std::io::Result<(UnixStream, OwnedFd)> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
    )?;
    let ours = UnixStream::from_std(std::os::unix::net::UnixStream::from(ours))?;
    Ok((ours, theirs))
}

/// Starts reading and writing `stream`; the tasks end when the app closes it or the
/// signal receiver is dropped.
pub fn start(
    stream: UnixStream,
    signals: mpsc::Sender<RunSignal>,
) -> (IpcSender, [tokio::task::JoinHandle<()>; 2]) {
    let stream = Arc::new(stream);
    let (tx, rx) = mpsc::channel(OUTGOING);
    let writer = tokio::spawn(write(Arc::clone(&stream), rx));
    let reader = tokio::spawn(read(stream, signals));
    (IpcSender(tx), [reader, writer])
}

async fn write(stream: Arc<UnixStream>, mut queue: mpsc::Receiver<Outgoing>) {
    while let Some(message) = queue.recv().await {
        let mut written = 0;
        while written < message.line.len() {
            // The descriptor goes with the first bytes of its line: Node takes a handle
            // from the read that carries it.
            let fd = message
                .fd
                .as_ref()
                .filter(|_| written == 0)
                .map(AsRawFd::as_raw_fd);
            let chunk = &message.line[written..];
            let sent = stream
                .async_io(Interest::WRITABLE, || {
                    let fds = fd.map(|fd| [fd]);
                    let cmsgs: Vec<ControlMessage<'_>> = fds
                        .as_ref()
                        .map(|f| ControlMessage::ScmRights(f))
                        .into_iter()
                        .collect();
                    sendmsg::<()>(
                        stream.as_raw_fd(),
                        &[IoSlice::new(chunk)],
                        &cmsgs,
                        MsgFlags::MSG_NOSIGNAL,
                        None,
                    )
                    .map_err(std::io::Error::from)
                })
                .await;
            match sent {
                Ok(n) => written += n,
                Err(e) => {
                    tracing::debug!(error = %e, "app IPC channel write failed");
                    return;
                }
            }
        }
    }
}

async fn read(stream: Arc<UnixStream>, signals: mpsc::Sender<RunSignal>) {
    let mut lines = Lines::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stream
            .async_io(Interest::READABLE, || stream.try_read(&mut buf))
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for line in lines.feed(&buf[..n]) {
            let Some(signal) = classify(&line) else {
                continue;
            };
            // Full: the supervisor is behind on a flood; this app's extra messages go.
            if signals.try_send(signal).is_err() && signals.is_closed() {
                return;
            }
        }
    }
}

/// Line assembly with the [`MAX_LINE`] cap.
#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
    skipping: bool,
}

impl Lines {
    fn feed(&mut self, mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut complete = Vec::new();
        while let Some(end) = memchr::memchr(b'\n', bytes) {
            if !self.skipping && self.partial.len() + end <= MAX_LINE {
                self.partial.extend_from_slice(&bytes[..end]);
                complete.push(std::mem::take(&mut self.partial));
            }
            self.partial.clear();
            self.skipping = false;
            bytes = &bytes[end + 1..];
        }
        if self.partial.len() + bytes.len() > MAX_LINE {
            self.partial.clear();
            self.skipping = true;
        } else if !self.skipping {
            self.partial.extend_from_slice(bytes);
        }
        complete
    }
}

/// What a line from the app means to us; `None` for anything else (Node's own
/// `NODE_HANDLE_ACK`, messages for nobody).
pub fn classify(line: &[u8]) -> Option<RunSignal> {
    let value: Value = serde_json::from_slice(line).ok()?;
    match &value {
        Value::String(s) if s == "ready" => Some(RunSignal::Ready("process.send('ready')")),
        Value::Object(map) => match (map.get("type"), map.get("cmd")) {
            (Some(Value::String(t)), _) if t == "process:msg" => Some(RunSignal::Message(value)),
            (_, Some(Value::String(cmd))) if cmd == "NODE_ZPM_LISTEN" => {
                let port = map
                    .get("port")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())?;
                let host = map.get("host").and_then(Value::as_str).map(str::to_owned);
                Some(RunSignal::ListenRequest { port, host })
            }
            (_, Some(Value::String(cmd))) if cmd == "NODE_ZPM_LISTENING" => {
                Some(RunSignal::Listening)
            }
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lines_are_assembled_and_overlong_ones_skipped() {
        let mut lines = Lines::default();
        assert!(lines.feed(b"\"rea").is_empty());
        assert_eq!(lines.feed(b"dy\"\n{\"a\""), vec![b"\"ready\"".to_vec()]);
        assert_eq!(lines.feed(b":1}\n"), vec![b"{\"a\":1}".to_vec()]);
        let huge = vec![b'x'; MAX_LINE + 1];
        assert!(lines.feed(&huge).is_empty());
        assert!(lines.feed(b"still the long one").is_empty());
        assert_eq!(lines.feed(b"\n\"ready\"\n"), vec![b"\"ready\"".to_vec()]);
    }

    #[test]
    fn messages_are_classified() {
        assert_eq!(
            classify(b"\"ready\""),
            Some(RunSignal::Ready("process.send('ready')"))
        );
        assert!(matches!(
            classify(br#"{"type":"process:msg","data":{"a":1}}"#),
            Some(RunSignal::Message(_))
        ));
        assert_eq!(
            classify(br#"{"cmd":"NODE_ZPM_LISTEN","port":8000,"host":null}"#),
            Some(RunSignal::ListenRequest {
                port: 8000,
                host: None
            })
        );
        assert_eq!(classify(br#"{"cmd":"NODE_ZPM_LISTEN","port":70000}"#), None);
        assert_eq!(classify(br#"{"cmd":"NODE_HANDLE_ACK"}"#), None);
        assert_eq!(classify(b"not json"), None);
    }
}
