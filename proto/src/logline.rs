//! One log line as JSON text, losslessly — the rule the logs agent's json files and
//! `zpm logs --json` share: `message` is the line (without its `\n`) as text; when the line
//! is not valid UTF-8, `message` holds the lossy text (U+FFFD for each invalid sequence)
//! and `message_b64` the exact bytes (standard base64 with padding, RFC 4648). A reader
//! takes `message_b64` when present, else `message`.

use std::borrow::Cow;

/// `(message, message_b64)` of `line`.
pub fn message(line: &[u8]) -> (Cow<'_, str>, Option<String>) {
    match std::str::from_utf8(line) {
        Ok(text) => (Cow::Borrowed(text), None),
        Err(_) => (String::from_utf8_lossy(line), Some(base64(line))),
    }
}

/// Standard base64 with padding: all the base64 zpm needs, so no crate for it.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let at = |i: usize| u32::from(group.get(i).copied().unwrap_or(0));
        let n = at(0) << 16 | at(1) << 8 | at(2);
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn bytes_travel_only_when_not_utf8() {
        assert_eq!(message("héllo".as_bytes()), (Cow::Borrowed("héllo"), None));
        let (text, b64) = message(b"bad \xff end");
        assert_eq!(text, "bad \u{fffd} end");
        assert_eq!(b64.as_deref(), Some("YmFkIP8gZW5k"));
    }
}
