//! How results are shown: comfy-table tables for people, JSON for machines.

use anyhow::Context as _;
use comfy_table::{Cell, Color, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use zpm_proto::{AgentInfo, ProcessInfo, ProcessStatus};

pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string(value).context("encoding JSON")?;
    writeln!(std::io::stdout().lock(), "{text}").context("writing to stdout")
}

pub fn print_line(text: &str) -> anyhow::Result<()> {
    writeln!(std::io::stdout().lock(), "{text}").context("writing to stdout")
}

/// Colours only for a terminal, and not when `NO_COLOR` is set (non-empty), see no-color.org.
pub fn colour_wanted() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal()
}

/// A table styled (coloured cells) exactly when `colour` says, whatever stdout is.
pub(crate) fn new_table(colour: bool) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).force_no_tty();
    if colour {
        table.enforce_styling();
    }
    table
}

/// User data (names, argv, env values…) as it may be written to a terminal: control
/// characters escaped as `\n`, `\t`, `\r`, `\x1b`, `\u{85}`, so that no byte of it can
/// move the cursor, recolour or retitle the terminal.
pub fn printable(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => shown.push_str("\\n"),
            '\t' => shown.push_str("\\t"),
            '\r' => shown.push_str("\\r"),
            c if c.is_ascii_control() => {
                let _ = write!(shown, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(shown, "\\u{{{:x}}}", u32::from(c));
            }
            c => shown.push(c),
        }
    }
    shown
}

/// PM2's colours: green online, red errored, yellow on the way, grey stopped.
fn status_colour(status: ProcessStatus) -> Color {
    match status {
        ProcessStatus::Online => Color::Green,
        ProcessStatus::Errored => Color::Red,
        ProcessStatus::Launching | ProcessStatus::Stopping | ProcessStatus::WaitingRestart => {
            Color::Yellow
        }
        ProcessStatus::Stopped => Color::DarkGrey,
        ProcessStatus::Unknown => Color::Magenta,
    }
}

pub(crate) fn status_name(status: ProcessStatus) -> &'static str {
    match status {
        ProcessStatus::Launching => "launching",
        ProcessStatus::Online => "online",
        ProcessStatus::Stopping => "stopping",
        ProcessStatus::Stopped => "stopped",
        ProcessStatus::Errored => "errored",
        ProcessStatus::WaitingRestart => "waiting-restart",
        ProcessStatus::Unknown => "unknown",
    }
}

/// `1500` → `1s`, `125000` → `2m`, like PM2's uptime column.
pub fn short_duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}D", s / 86_400),
    }
}

pub(crate) fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// `waiting` while it waits for its dependencies (`depends_on`), else its status.
pub(crate) fn shown_status(row: &ProcessInfo) -> &'static str {
    if row.waiting.is_empty() {
        status_name(row.status)
    } else {
        "waiting"
    }
}

/// The `ls` table, the status coloured when stdout is a terminal (see [`colour_wanted`]).
pub fn process_table(rows: &[ProcessInfo]) -> String {
    process_table_styled(rows, colour_wanted())
}

fn process_table_styled(rows: &[ProcessInfo], colour: bool) -> String {
    let mut table = new_table(colour);
    table.set_header([
        "id",
        "name",
        "namespace",
        "host",
        "pid",
        "status",
        "↺",
        "uptime",
        "cpu",
        "mem",
    ]);
    for row in rows {
        table.add_row([
            Cell::new(row.id),
            Cell::new(printable(&row.name)),
            Cell::new(printable(&row.namespace)),
            Cell::new(printable(&row.host)),
            Cell::new(or_dash(row.pid)),
            Cell::new(shown_status(row)).fg(status_colour(row.status)),
            Cell::new(row.restarts),
            Cell::new(row.uptime_ms.map_or_else(|| "-".to_owned(), short_duration)),
            Cell::new(
                row.cpu
                    .map_or_else(|| "-".to_owned(), |c| format!("{c:.0}%")),
            ),
            Cell::new(row.memory.map_or_else(|| "-".to_owned(), bytesize_short)),
        ]);
    }
    table.to_string()
}

pub(crate) fn bytesize_short(bytes: u64) -> String {
    format!("{:.1}mb", bytes as f64 / 1_048_576.0)
}

/// `host vm: 2 cpus, cpu 12%, memory 3.1 GiB of 23.5 GiB available, load 0.52 0.40 0.31`
pub fn host_line(info: &zpm_proto::metrics::HostInfo) -> String {
    let m = &info.metrics;
    format!(
        "host {}: {} cpus, cpu {:.0}%, memory {} available of {}, load {:.2} {:.2} {:.2}",
        printable(&info.host),
        m.cpus,
        m.cpu,
        bytesize::ByteSize(m.mem_available).display().iec(),
        bytesize::ByteSize(m.mem_total).display().iec(),
        m.load[0],
        m.load[1],
        m.load[2],
    )
}

pub fn agents_table(agents: &[AgentInfo]) -> String {
    let mut table = new_table(false);
    table.set_header([
        "role",
        "host",
        "pid",
        "uptime",
        "memory",
        "version",
        "connected",
        "last contact",
    ]);
    for agent in agents {
        table.add_row([
            printable(&agent.role),
            printable(&agent.host),
            agent.pid.to_string(),
            short_duration(agent.uptime_ms),
            agent.memory.map_or_else(|| "-".to_owned(), bytesize_short),
            printable(&agent.version),
            if agent.connected { "yes" } else { "no" }.to_owned(),
            format!("{} ago", short_duration(agent.last_seen_ms)),
        ]);
    }
    table.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use zpm_proto::commands::AppDescription;

    #[test]
    fn durations_read_like_pm2() {
        assert_eq!(short_duration(1500), "1s");
        assert_eq!(short_duration(125_000), "2m");
        assert_eq!(short_duration(7_200_000), "2h");
        assert_eq!(short_duration(200_000_000), "2D");
    }

    fn row(name: &str, status: ProcessStatus) -> ProcessInfo {
        ProcessInfo {
            id: 0,
            name: name.to_owned(),
            namespace: "default".to_owned(),
            instance: 0,
            host: "h\u{7}ost".to_owned(),
            pid: Some(42),
            status,
            restarts: 0,
            uptime_ms: Some(1500),
            exit_code: None,
            signal: None,
            cpu: None,
            memory: None,
            max_memory_restart: None,
            error: None,
            status_text: None,
            health: None,
            waiting: Vec::new(),
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("plain café"), "plain café");
        assert_eq!(printable("a\nb\tc\rd"), r"a\nb\tc\rd");
        assert_eq!(printable("\u{1b}[31mred\u{7}"), r"\x1b[31mred\x07");
        assert_eq!(printable("del\u{7f} csi\u{9b}"), r"del\x7f csi\u{9b}");
    }

    #[test]
    fn tables_hold_no_control_bytes_of_user_data() {
        let evil = "\u{1b}]0;pwned\u{7}\nx";
        let ls = process_table_styled(&[row(evil, ProcessStatus::Online)], false);
        assert!(!ls.contains('\u{1b}') && !ls.contains('\u{7}'), "{ls}");
        assert!(ls.contains(r"\x1b]0;pwned\x07\nx"), "{ls}");
        let mut app = AppDescription {
            info: row(evil, ProcessStatus::Stopped),
            spec: zpm_proto::AppSpec::new(evil, vec!["/bin/echo".into(), evil.into()], "/tmp"),
            logs: None,
            restarts: vec![zpm_proto::RestartRecord {
                at_ms: 0,
                reason: zpm_proto::RestartReason::Exited {
                    code: None,
                    signal: Some(evil.into()),
                },
            }],
        };
        app.spec.env.insert("K".into(), evil.into());
        let described = crate::describe::describe_table(&app);
        assert!(!described.contains('\u{1b}'), "{described}");
        assert!(described.contains(r"K=\x1b]0;pwned"), "{described}");
        let agents = agents_table(&[AgentInfo {
            role: "spawner".into(),
            host: evil.into(),
            pid: 1,
            version: "0.1.0".into(),
            connected: true,
            uptime_ms: 0,
            memory: None,
            last_seen_ms: 0,
        }]);
        assert!(!agents.contains('\u{1b}'), "{agents}");
    }

    /// The text a terminal shows: escape sequences removed.
    fn visible(line: &str) -> String {
        let mut shown = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(char::is_ascii_alphabetic);
            } else {
                shown.push(c);
            }
        }
        shown
    }

    #[test]
    fn statuses_are_coloured_only_when_asked_and_stay_aligned() {
        let rows = [
            row("web", ProcessStatus::Online),
            row("bad", ProcessStatus::Errored),
            row("boot", ProcessStatus::Launching),
            row("off", ProcessStatus::Stopped),
        ];
        let plain = process_table_styled(&rows, false);
        assert!(!plain.contains('\u{1b}'), "{plain}");
        let coloured = process_table_styled(&rows, true);
        // crossterm's 256-colour codes: 10 green, 9 red, 11 yellow, 8 grey.
        for (status, code) in [
            ("online", 10),
            ("errored", 9),
            ("launching", 11),
            ("stopped", 8),
        ] {
            let line = coloured.lines().find(|l| l.contains(status)).unwrap();
            let styled = format!("\u{1b}[38;5;{code}m {status}");
            assert!(line.contains(&styled), "{line:?}");
        }
        let widths: Vec<usize> = coloured
            .lines()
            .map(|l| visible(l).chars().count())
            .collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{coloured}");
        assert_eq!(visible(&coloured), plain);
    }
}
