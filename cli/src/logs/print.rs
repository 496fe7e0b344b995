//! How `zpm logs` writes lines: PM2's `ID|NAME | line` (the prefix coloured per app on a
//! terminal), bare lines (`--raw`), or one JSON object per line (`--json`), each
//! optionally stamped with the time the CLI received it. Everything goes through one
//! `BufWriter`, flushed per batch, so a flooding app costs one write per batch.
//!
//! Line bytes are written as the app wrote them (as `pm2 logs` does); names and paths,
//! which come from other peers, are escaped with [`printable`].

use super::lines::{Lost, Sink, Who};
use crate::output::printable;
use crossterm::style::{Color, ResetColor, SetForegroundColor};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use zpm_proto::LogStream;

/// What a line looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Prefixed { colour: bool },
    Raw,
    Json,
}

/// Prefix colours, one per app (by id).
const PALETTE: [Color; 6] = [
    Color::Cyan,
    Color::Green,
    Color::Magenta,
    Color::Yellow,
    Color::Blue,
    Color::DarkCyan,
];

pub struct Printer<W: Write> {
    out: BufWriter<W>,
    style: Style,
    /// `--timestamp`: the pattern, and its text for the current batch.
    stamp: Option<(String, String)>,
    /// Names are padded to this many characters, so lines of several apps align.
    width: usize,
    /// Per app id: the name and width the prefix was built for, and the prefix.
    prefixes: HashMap<u32, (String, usize, Vec<u8>)>,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, style: Style, stamp: Option<String>) -> Self {
        Self {
            out: BufWriter::with_capacity(64 * 1024, out),
            style,
            stamp: stamp.map(|pattern| (pattern, String::new())),
            width: 0,
            prefixes: HashMap::new(),
        }
    }

    /// Pads names to at least this one's width.
    pub fn widen(&mut self, name: &str) {
        self.width = self.width.max(printable(name).chars().count());
    }

    /// Takes the current time as the stamp of the lines that follow.
    pub fn stamp_now(&mut self) {
        if let Some((pattern, text)) = &mut self.stamp {
            // The pattern was checked at start; a clock jiff cannot format gets no stamp.
            let now = jiff::ZonedDateTime::now();
            *text = jiff::fmt::strtime::format(pattern.as_str(), &now).unwrap_or_default();
        }
    }

    /// PM2's header before a file's last lines (only in the prefixed style).
    pub fn header(&mut self, path: &str, lines: u32) -> io::Result<()> {
        let Style::Prefixed { colour } = self.style else {
            return Ok(());
        };
        let text = format!("{} last {lines} lines:", printable(path));
        if colour {
            let grey = SetForegroundColor(Color::DarkGrey);
            writeln!(self.out, "{grey}{text}{ResetColor}")
        } else {
            writeln!(self.out, "{text}")
        }
    }

    /// The publisher dropped events for us (`bus:dropped`): whose is unknown.
    pub fn dropped_events(&mut self, events: u64) -> io::Result<()> {
        if self.style == Style::Json {
            return writeln!(self.out, "{{\"dropped_events\":{events}}}");
        }
        writeln!(
            self.out,
            "[zpm] {events} log events dropped (out of credit)"
        )
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out.into_inner().ok().expect("flushes")
    }

    /// Writes `ID|NAME | `, built once per app (again if its name or the width changes).
    fn write_prefix(&mut self, id: u32, name: &str, colour: bool) -> io::Result<()> {
        self.widen(name);
        let width = self.width;
        let current = self
            .prefixes
            .get(&id)
            .is_some_and(|(n, w, _)| n == name && *w == width);
        if !current {
            let label = format!("{id}|{:<width$} |", printable(name));
            let text = if colour {
                let colour = SetForegroundColor(PALETTE[id as usize % PALETTE.len()]);
                format!("{colour}{label}{ResetColor} ")
            } else {
                format!("{label} ")
            };
            self.prefixes
                .insert(id, (name.to_owned(), width, text.into_bytes()));
        }
        match self.prefixes.get(&id) {
            Some((_, _, prefix)) => self.out.write_all(prefix),
            None => Ok(()),
        }
    }

    /// The stamp and its separator, if stamping.
    fn write_stamp(&mut self) -> io::Result<()> {
        if let Some((_, text)) = &self.stamp {
            self.out.write_all(text.as_bytes())?;
            self.out.write_all(b": ")?;
        }
        Ok(())
    }

    fn json(&mut self, value: &impl Serialize) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")
    }
}

/// `--json`: one object per line.
#[derive(Serialize)]
struct JsonLine<'a> {
    id: u32,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<LogStream>,
    message: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_b64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<&'a str>,
}

/// `--json`: what was lost of one stream.
#[derive(Serialize)]
struct JsonLost<'a> {
    id: u32,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<LogStream>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped_lines: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped_bytes: Option<u64>,
}

impl<W: Write> Sink for Printer<W> {
    fn line(&mut self, who: Who<'_>, line: &[u8]) -> io::Result<()> {
        match self.style {
            Style::Json => {
                let (message, message_b64) = zpm_proto::logline::message(line);
                let timestamp = self.stamp.as_ref().map(|(_, text)| text.as_str());
                let object = JsonLine {
                    id: who.id,
                    name: who.name,
                    stream: who.stream,
                    message,
                    message_b64,
                    timestamp,
                };
                serde_json::to_writer(&mut self.out, &object)?;
                return self.out.write_all(b"\n");
            }
            Style::Prefixed { colour } => self.write_prefix(who.id, who.name, colour)?,
            Style::Raw => {}
        }
        self.write_stamp()?;
        self.out.write_all(line)?;
        self.out.write_all(b"\n")
    }

    fn lost(&mut self, who: Who<'_>, lost: Lost) -> io::Result<()> {
        let (lines, bytes, text) = match lost {
            Lost::Lines(n) => (Some(n), None, format!("[zpm] {n} lines dropped")),
            Lost::Bytes(n) => (None, Some(n), format!("[zpm] {n} bytes of a line dropped")),
        };
        match self.style {
            Style::Json => self.json(&JsonLost {
                id: who.id,
                name: who.name,
                stream: who.stream,
                dropped_lines: lines,
                dropped_bytes: bytes,
            }),
            _ => {
                // A marked line of our own, never mistaken for the app's.
                let stamp = self.stamp.take();
                let result = self.line(who, text.as_bytes());
                self.stamp = stamp;
                result
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(id: u32, name: &str) -> Who<'_> {
        Who {
            id,
            name,
            stream: Some(LogStream::Out),
        }
    }

    fn printed(style: Style, stamp: Option<&str>, lines: &[(u32, &str, &[u8])]) -> String {
        let mut printer = Printer::new(Vec::new(), style, stamp.map(str::to_owned));
        printer.stamp_now();
        for (id, name, line) in lines {
            printer.line(who(*id, name), line).unwrap();
        }
        printer.lost(who(0, "api"), Lost::Lines(3)).unwrap();
        String::from_utf8_lossy(&printer.into_inner()).into_owned()
    }

    #[test]
    fn prefixed_lines_align_and_keep_the_app_bytes() {
        let lines: [(u32, &str, &[u8]); 3] = [
            (0, "api", b"hello"),
            (12, "worker", b"\x1b[31mred\x1b[0m"),
            (0, "api", b"again"),
        ];
        let text = printed(Style::Prefixed { colour: false }, None, &lines);
        assert_eq!(
            text,
            "0|api | hello\n12|worker | \x1b[31mred\x1b[0m\n0|api    | again\n\
             0|api    | [zpm] 3 lines dropped\n"
        );
        let raw = printed(Style::Raw, None, &lines);
        assert_eq!(
            raw,
            "hello\n\x1b[31mred\x1b[0m\nagain\n[zpm] 3 lines dropped\n"
        );
    }

    #[test]
    fn names_from_peers_are_escaped_and_coloured_only_when_asked() {
        let evil: [(u32, &str, &[u8]); 1] = [(1, "a\u{1b}]0;x\u{7}", b"line")];
        let text = printed(Style::Prefixed { colour: true }, None, &evil);
        assert!(text.starts_with("\u{1b}[38;5;"), "{text:?}");
        assert!(text.contains(r"1|a\x1b]0;x\x07 |"), "{text:?}");
        assert!(!text.contains('\u{7}'), "{text:?}");
    }

    #[test]
    fn stamps_precede_the_line() {
        let lines: [(u32, &str, &[u8]); 1] = [(0, "api", b"hello")];
        let text = printed(Style::Raw, Some("%Y"), &lines);
        let (year, rest) = text.split_once(": ").unwrap();
        assert!(year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()));
        assert!(rest.starts_with("hello\n[zpm] 3 lines dropped"), "{text}");
    }

    #[test]
    fn json_lines_are_lossless() {
        let lines: [(u32, &str, &[u8]); 2] = [(0, "api", b"ok \"q\""), (0, "api", b"bad \xff")];
        let text = printed(Style::Json, Some("%Y"), &lines);
        let values: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(values[0]["message"], "ok \"q\"");
        assert_eq!(values[0]["stream"], "out");
        assert!(values[0].get("message_b64").is_none());
        assert_eq!(values[0]["timestamp"].as_str().map(str::len), Some(4));
        assert_eq!(values[1]["message_b64"], "YmFkIP8=");
        assert_eq!(
            values[2],
            serde_json::json!({"id": 0, "name": "api", "stream": "out", "dropped_lines": 3})
        );
    }
}
