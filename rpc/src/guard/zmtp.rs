//! ZMTP 3 framing as the guard sees it (RFC 23 / RFC 37): a 64-byte greeting, then frames
//! `flags, size (1 byte, or 8 with LONG), body`. [`Inbound`] checks a peer's stream before
//! any byte reaches zmq.rs and rewrites its READY so the peer's routing identity is ours;
//! [`Outbound`] counts the messages zmq.rs wrote back, so the ledger knows what a peer has
//! actually read. Both are pure: bytes in, bytes out, no I/O.

pub const GREETING_LEN: usize = 64;
const MORE: u8 = 0x01;
const LONG: u8 = 0x02;
const COMMAND: u8 = 0x04;
const MECHANISM_AT: usize = 12;
const MECHANISM_NULL: &[u8; 20] = b"NULL\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// Why a peer's stream was refused; the connection is then cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("not a ZMTP greeting")]
    NotZmtp,
    #[error("ZMTP version below 3")]
    OldVersion,
    #[error("security mechanism other than NULL")]
    Mechanism,
    #[error("reserved frame flags set")]
    ReservedFlags,
    #[error("message larger than the endpoint's maximum")]
    MessageTooLarge,
    #[error("message with too many frames")]
    TooManyFrames,
    #[error("command frame too large")]
    CommandTooLarge,
    #[error("malformed or missing READY command")]
    BadReady,
    #[error("message before the READY handshake")]
    TrafficBeforeReady,
    #[error("handshake not completed in time")]
    HandshakeTimeout,
}

/// What one endpoint accepts from a peer.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    /// Bytes of one message, all frames together.
    pub max_message_bytes: u64,
    pub max_frames: u32,
    /// Bytes of one command frame (READY carries a few short properties).
    pub max_command_bytes: usize,
}

/// A frame header being read: up to 9 bytes, possibly split across reads.
#[derive(Default)]
struct Header {
    bytes: [u8; 9],
    len: usize,
}

impl Header {
    /// Takes bytes from `input` until the header is whole; returns how many it took and,
    /// once whole, `(flags, size)`.
    fn take(&mut self, input: &[u8]) -> (usize, Option<(u8, u64)>) {
        let mut used = 0;
        while used < input.len() {
            self.bytes[self.len] = input[used];
            self.len += 1;
            used += 1;
            let need = if self.bytes[0] & LONG == 0 { 2 } else { 9 };
            if self.len == need {
                let size = if need == 2 {
                    u64::from(self.bytes[1])
                } else {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(&self.bytes[1..9]);
                    u64::from_be_bytes(be)
                };
                let flags = self.bytes[0];
                self.len = 0;
                return (used, Some((flags, size)));
            }
        }
        (used, None)
    }

    fn raw(flags: u8, size: u64) -> ([u8; 9], usize) {
        let mut out = [0u8; 9];
        out[0] = flags;
        if flags & LONG == 0 {
            out[1] = size as u8;
            (out, 2)
        } else {
            out[1..9].copy_from_slice(&size.to_be_bytes());
            (out, 9)
        }
    }
}

enum InState {
    Greeting(usize),
    Header,
    Body(u64),
    Command { size: usize, body: Vec<u8> },
}

/// Checks and forwards a peer's bytes towards zmq.rs.
pub struct Inbound {
    limits: FrameLimits,
    identity: Vec<u8>,
    state: InState,
    header: Header,
    ready: bool,
    message_bytes: u64,
    message_frames: u32,
    more: bool,
    /// Commands after READY (e.g. ZMTP 3.1 PING), which zmq.rs does not implement: dropped.
    pub commands_dropped: u64,
}

impl Inbound {
    /// `identity` replaces whatever routing identity the peer asks for in its READY.
    pub fn new(limits: FrameLimits, identity: Vec<u8>) -> Self {
        Self {
            limits,
            identity,
            state: InState::Greeting(0),
            header: Header::default(),
            ready: false,
            message_bytes: 0,
            message_frames: 0,
            more: false,
            commands_dropped: 0,
        }
    }

    /// True once the peer's READY went through.
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Consumes `input`, appending to `out` what may reach zmq.rs.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), Violation> {
        while !input.is_empty() {
            let used = match &mut self.state {
                InState::Greeting(seen) => {
                    let n = (GREETING_LEN - *seen).min(input.len());
                    for (k, &byte) in input[..n].iter().enumerate() {
                        check_greeting_byte(*seen + k, byte)?;
                    }
                    *seen += n;
                    out.extend_from_slice(&input[..n]);
                    if *seen == GREETING_LEN {
                        self.state = InState::Header;
                    }
                    n
                }
                InState::Header => {
                    let (used, header) = self.header.take(input);
                    if let Some((flags, size)) = header {
                        self.on_header(flags, size, out)?;
                    }
                    used
                }
                InState::Body(remaining) => {
                    let n = (*remaining).min(input.len() as u64) as usize;
                    out.extend_from_slice(&input[..n]);
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.end_frame();
                    }
                    n
                }
                InState::Command { size, body } => {
                    let n = (*size - body.len()).min(input.len());
                    body.extend_from_slice(&input[..n]);
                    if body.len() == *size {
                        let body = std::mem::take(body);
                        self.state = InState::Header;
                        self.on_command(&body, out)?;
                    }
                    n
                }
            };
            input = &input[used..];
        }
        Ok(())
    }

    fn on_header(&mut self, flags: u8, size: u64, out: &mut Vec<u8>) -> Result<(), Violation> {
        if flags & !(MORE | LONG | COMMAND) != 0 {
            return Err(Violation::ReservedFlags);
        }
        if flags & COMMAND != 0 {
            if flags & MORE != 0 {
                return Err(Violation::ReservedFlags);
            }
            let size = usize::try_from(size)
                .ok()
                .filter(|s| *s <= self.limits.max_command_bytes)
                .ok_or(Violation::CommandTooLarge)?;
            if size == 0 {
                return Err(Violation::BadReady);
            }
            self.state = InState::Command {
                size,
                body: Vec::with_capacity(size),
            };
            return Ok(());
        }
        if !self.ready {
            return Err(Violation::TrafficBeforeReady);
        }
        self.message_frames += 1;
        if self.message_frames > self.limits.max_frames {
            return Err(Violation::TooManyFrames);
        }
        self.message_bytes = self.message_bytes.saturating_add(size);
        if self.message_bytes > self.limits.max_message_bytes {
            return Err(Violation::MessageTooLarge);
        }
        let (raw, len) = Header::raw(flags, size);
        out.extend_from_slice(&raw[..len]);
        self.more = flags & MORE != 0;
        if size == 0 {
            self.end_frame();
        } else {
            self.state = InState::Body(size);
        }
        Ok(())
    }

    fn end_frame(&mut self) {
        self.state = InState::Header;
        if !self.more {
            self.message_bytes = 0;
            self.message_frames = 0;
        }
    }

    fn on_command(&mut self, body: &[u8], out: &mut Vec<u8>) -> Result<(), Violation> {
        if self.ready {
            self.commands_dropped += 1;
            return Ok(());
        }
        let rewritten = rewrite_ready(body, &self.identity).ok_or(Violation::BadReady)?;
        let size = rewritten.len() as u64;
        let flags = if size > 255 { COMMAND | LONG } else { COMMAND };
        let (raw, len) = Header::raw(flags, size);
        out.extend_from_slice(&raw[..len]);
        out.extend_from_slice(&rewritten);
        self.ready = true;
        Ok(())
    }
}

fn check_greeting_byte(at: usize, byte: u8) -> Result<(), Violation> {
    match at {
        0 if byte != 0xFF => Err(Violation::NotZmtp),
        9 if byte & 0x01 == 0 => Err(Violation::NotZmtp),
        10 if byte < 3 => Err(Violation::OldVersion),
        at if (MECHANISM_AT..MECHANISM_AT + 20).contains(&at)
            && byte != MECHANISM_NULL[at - MECHANISM_AT] =>
        {
            Err(Violation::Mechanism)
        }
        _ => Ok(()),
    }
}

/// Parses a READY command body and re-encodes it with `Identity` set to `identity`.
/// `None` if it is not a well-formed READY.
fn rewrite_ready(body: &[u8], identity: &[u8]) -> Option<Vec<u8>> {
    let (&name_len, rest) = body.split_first()?;
    let (name, mut props) = rest.split_at_checked(usize::from(name_len))?;
    if name != b"READY" {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() + identity.len() + 16);
    out.push(5);
    out.extend_from_slice(b"READY");
    while !props.is_empty() {
        let (&key_len, rest) = props.split_first()?;
        let (key, rest) = rest.split_at_checked(usize::from(key_len))?;
        let (len, rest) = rest.split_at_checked(4)?;
        let value_len = u32::from_be_bytes(len.try_into().ok()?) as usize;
        let (value, rest) = rest.split_at_checked(value_len)?;
        if !key.eq_ignore_ascii_case(b"Identity") && !key.eq_ignore_ascii_case(b"Routing-Id") {
            write_property(&mut out, key, value);
        }
        props = rest;
    }
    write_property(&mut out, b"Identity", identity);
    Some(out)
}

fn write_property(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    out.push(key.len() as u8);
    out.extend_from_slice(key);
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
}

/// Counts what zmq.rs writes to a peer: messages completed and their frame bytes.
pub struct Outbound {
    greeting_left: usize,
    header: Header,
    /// Body bytes left in the current frame, and whether it is a message frame.
    body: Option<(u64, bool)>,
    more: bool,
}

/// What one stretch of outbound bytes completed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub messages: u64,
    pub bytes: u64,
}

impl Default for Outbound {
    fn default() -> Self {
        Self {
            greeting_left: GREETING_LEN,
            header: Header::default(),
            body: None,
            more: false,
        }
    }
}

impl Outbound {
    pub fn count(&mut self, mut input: &[u8]) -> Delivered {
        let mut done = Delivered::default();
        while !input.is_empty() {
            if self.greeting_left > 0 {
                let n = self.greeting_left.min(input.len());
                self.greeting_left -= n;
                input = &input[n..];
                continue;
            }
            match &mut self.body {
                Some((remaining, is_message)) => {
                    let n = (*remaining).min(input.len() as u64);
                    *remaining -= n;
                    if *is_message {
                        done.bytes += n;
                    }
                    input = &input[n as usize..];
                    if *remaining == 0 {
                        let finished_message = *is_message && !self.more;
                        self.body = None;
                        done.messages += u64::from(finished_message);
                    }
                }
                None => {
                    let (used, header) = self.header.take(input);
                    input = &input[used..];
                    if let Some((flags, size)) = header {
                        let is_message = flags & COMMAND == 0;
                        if is_message {
                            self.more = flags & MORE != 0;
                        }
                        if size == 0 {
                            done.messages += u64::from(is_message && !self.more);
                        } else {
                            self.body = Some((size, is_message));
                        }
                    }
                }
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: FrameLimits = FrameLimits {
        max_message_bytes: 1000,
        max_frames: 4,
        max_command_bytes: 512,
    };

    fn greeting() -> Vec<u8> {
        let mut g = vec![0u8; GREETING_LEN];
        g[0] = 0xFF;
        g[9] = 0x7F;
        g[10] = 3;
        g[11] = 1;
        g[MECHANISM_AT..MECHANISM_AT + 4].copy_from_slice(b"NULL");
        g
    }

    fn ready(props: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut body = vec![5];
        body.extend_from_slice(b"READY");
        for (k, v) in props {
            write_property(&mut body, k, v);
        }
        let mut frame = vec![COMMAND, body.len() as u8];
        frame.extend_from_slice(&body);
        frame
    }

    fn frame(flags: u8, body: &[u8]) -> Vec<u8> {
        let mut f = vec![flags, body.len() as u8];
        f.extend_from_slice(body);
        f
    }

    fn handshake() -> Vec<u8> {
        let mut bytes = greeting();
        bytes.extend(ready(&[
            (b"Socket-Type", b"DEALER"),
            (b"Identity", b"evil"),
        ]));
        bytes
    }

    #[test]
    fn ready_identity_is_replaced_and_messages_pass_byte_by_byte() {
        let mut inbound = Inbound::new(LIMITS, b"zg1".to_vec());
        let mut stream = handshake();
        stream.extend(frame(MORE, b""));
        stream.extend(frame(0, b"hello"));
        let mut out = Vec::new();
        for byte in &stream {
            inbound.feed(std::slice::from_ref(byte), &mut out).unwrap();
        }
        assert!(inbound.ready());
        let mut expected = greeting();
        expected.extend(ready(&[(b"Socket-Type", b"DEALER"), (b"Identity", b"zg1")]));
        expected.extend(frame(MORE, b""));
        expected.extend(frame(0, b"hello"));
        assert_eq!(out, expected);
    }

    #[test]
    fn huge_frame_header_is_refused_before_its_body() {
        let mut inbound = Inbound::new(LIMITS, b"id".to_vec());
        let mut out = Vec::new();
        inbound.feed(&handshake(), &mut out).unwrap();
        let mut huge = vec![LONG];
        huge.extend_from_slice(&(1u64 << 62).to_be_bytes());
        assert_eq!(
            inbound.feed(&huge, &mut out),
            Err(Violation::MessageTooLarge)
        );
    }

    #[test]
    fn limits_hold_across_frames_and_reset_per_message() {
        let mut inbound = Inbound::new(LIMITS, b"id".to_vec());
        let mut out = Vec::new();
        inbound.feed(&handshake(), &mut out).unwrap();
        for _ in 0..3 {
            inbound.feed(&frame(MORE, &[0; 200]), &mut out).unwrap();
            inbound.feed(&frame(0, &[0; 200]), &mut out).unwrap();
        }
        let mut five = Vec::new();
        for _ in 0..4 {
            five.extend(frame(MORE, b"x"));
        }
        five.extend(frame(0, b"x"));
        assert_eq!(inbound.feed(&five, &mut out), Err(Violation::TooManyFrames));
        let mut inbound = Inbound::new(LIMITS, b"id".to_vec());
        inbound.feed(&handshake(), &mut out).unwrap();
        let mut big = Vec::new();
        for _ in 0..4 {
            big.extend(frame(MORE, &[0; 255]));
        }
        assert_eq!(
            inbound.feed(&big, &mut out),
            Err(Violation::MessageTooLarge)
        );
    }

    #[test]
    fn bad_starts_are_refused() {
        let mut out = Vec::new();
        let refuse = |bytes: &[u8]| {
            let mut inbound = Inbound::new(LIMITS, b"id".to_vec());
            inbound.feed(bytes, &mut Vec::new()).unwrap_err()
        };
        assert_eq!(refuse(b"GET / HTTP/1.1\r\n"), Violation::NotZmtp);
        let mut plain = greeting();
        plain[MECHANISM_AT..MECHANISM_AT + 5].copy_from_slice(b"PLAIN");
        assert_eq!(refuse(&plain), Violation::Mechanism);
        let mut early = greeting();
        early.extend(frame(0, b"hi"));
        assert_eq!(refuse(&early), Violation::TrafficBeforeReady);
        let mut not_ready = greeting();
        not_ready.extend(frame(COMMAND, b"\x05ERROR"));
        assert_eq!(refuse(&not_ready), Violation::BadReady);
        let mut big_command = greeting();
        big_command.push(COMMAND | LONG);
        big_command.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(refuse(&big_command), Violation::CommandTooLarge);
        let mut inbound = Inbound::new(LIMITS, b"id".to_vec());
        inbound.feed(&handshake(), &mut out).unwrap();
        let ping = frame(COMMAND, b"\x04PING\x00\x00");
        inbound.feed(&ping, &mut out).unwrap();
        assert_eq!(inbound.commands_dropped, 1);
        assert_eq!(
            inbound.feed(&[0x80, 0], &mut out),
            Err(Violation::ReservedFlags)
        );
    }

    #[test]
    fn outbound_counts_messages_and_bytes() {
        let mut stream = greeting();
        stream.extend(ready(&[(b"Socket-Type", b"ROUTER")]));
        stream.extend(frame(MORE, b""));
        stream.extend(frame(0, b"reply"));
        stream.extend(frame(0, b"push!!"));
        let mut outbound = Outbound::default();
        let mut total = Delivered::default();
        for chunk in stream.chunks(3) {
            let d = outbound.count(chunk);
            total.messages += d.messages;
            total.bytes += d.bytes;
        }
        assert_eq!(
            total,
            Delivered {
                messages: 2,
                bytes: 11
            }
        );
    }
}
