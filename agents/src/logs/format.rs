//! How a line looks in a file: timestamp prefixes and json lines.
//!
//! Json lines are lossless. `message` is the line without its `\n` as text; when the line
//! is not valid UTF-8, `message` holds the lossy text (U+FFFD for each invalid sequence)
//! and `message_b64` the exact bytes (standard base64 with padding, RFC 4648). So a reader
//! takes `message_b64` when present, else `message`.

use jiff::tz::TimeZone;
use serde::Serialize;
use std::borrow::Cow;
use std::time::SystemTime;
use zpm_proto::LogStream;

/// The json `timestamp`, and the fallback for an invalid `date_format`: RFC 3339 with
/// milliseconds and the local offset.
pub(crate) const RFC3339_MS: &str = "%Y-%m-%dT%H:%M:%S%.3f%:z";

/// `wall` in `zone`, formatted with the strftime-like `pattern` (jiff's `strtime`).
pub(crate) fn timestamp(
    pattern: &str,
    zone: &TimeZone,
    wall: SystemTime,
) -> Result<String, jiff::Error> {
    let instant = jiff::Timestamp::try_from(wall)?;
    jiff::fmt::strtime::format(pattern, &instant.to_zoned_datetime(zone.clone()))
}

/// The last timestamp a route formatted: the lines of one fetch share their arrival time,
/// so the pattern runs once per fetch, not once per line.
#[derive(Debug, Default)]
pub(crate) struct StampCache {
    at: Option<SystemTime>,
    text: String,
}

impl StampCache {
    pub(crate) fn get(&mut self, pattern: &str, zone: &TimeZone, wall: SystemTime) -> &str {
        if self.at != Some(wall) {
            // The pattern was checked when the target was set; what can still fail is a
            // wall clock outside jiff's range, which deserves no timestamp at all.
            self.text = timestamp(pattern, zone, wall).unwrap_or_default();
            self.at = Some(wall);
        }
        &self.text
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    timestamp: &'a str,
    app_name: &'a str,
    id: u32,
    stream: LogStream,
    message: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_b64: Option<String>,
}

/// Who a json line is from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub app_name: &'a str,
    pub id: u32,
    pub stream: LogStream,
}

/// Appends one json object for `line` (without its `\n`) and a `\n` to `out`.
pub(crate) fn json_line(out: &mut Vec<u8>, timestamp: &str, source: Source<'_>, line: &[u8]) {
    let (message, message_b64) = zpm_proto::logline::message(line);
    let object = JsonLine {
        timestamp,
        app_name: source.app_name,
        id: source.id,
        stream: source.stream,
        message,
        message_b64,
    };
    // Strings and integers always serialize, and a Vec always takes the bytes.
    let _ = serde_json::to_writer(&mut *out, &object);
    out.push(b'\n');
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    /// Decodes what [`base64`] writes (test side of the round trip).
    pub(crate) fn unbase64(text: &str) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        };
        let mut out = Vec::new();
        for group in text.as_bytes().chunks(4) {
            let digits: Vec<u8> = group
                .iter()
                .filter(|&&c| c != b'=')
                .map(|&c| value(c))
                .collect();
            let n = digits
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &d)| n | u32::from(d) << (18 - 6 * i));
            out.extend_from_slice(&n.to_be_bytes()[1..digits.len()]);
        }
        out
    }

    #[test]
    fn timestamps_follow_the_pattern_in_the_zone() {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let utc = TimeZone::UTC;
        assert_eq!(
            timestamp("%Y-%m-%d %H:%M:%S%.3f", &utc, wall).unwrap(),
            "2023-11-14 22:13:20.123"
        );
        assert_eq!(
            timestamp(RFC3339_MS, &utc, wall).unwrap(),
            "2023-11-14T22:13:20.123+00:00"
        );
        let plus_one = TimeZone::fixed(jiff::tz::offset(1));
        assert_eq!(
            timestamp(RFC3339_MS, &plus_one, wall).unwrap(),
            "2023-11-14T23:13:20.123+01:00"
        );
        assert!(timestamp("%Q%", &utc, wall).is_err());
    }

    #[test]
    fn json_lines_carry_exact_bytes_only_when_not_utf8() {
        let source = Source {
            app_name: "api",
            id: 7,
            stream: LogStream::Err,
        };
        let mut out = Vec::new();
        json_line(&mut out, "T", source, "héllo \"q\"\r".as_bytes());
        json_line(&mut out, "T", source, b"bad \xff\xfe end\0");
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[0],
            serde_json::json!({"timestamp": "T", "app_name": "api", "id": 7,
                "stream": "err", "message": "héllo \"q\"\r"})
        );
        assert_eq!(lines[1]["message"], "bad \u{fffd}\u{fffd} end\0");
        let b64 = lines[1]["message_b64"].as_str().unwrap();
        assert_eq!(unbase64(b64), b"bad \xff\xfe end\0");
    }
}
