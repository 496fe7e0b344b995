//! How results are shown: comfy-table tables for people, JSON for machines.

use anyhow::Context as _;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use std::io::Write as _;
use zpm_proto::commands::AppDescription;
use zpm_proto::{AgentInfo, ProcessInfo, ProcessStatus};

pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string(value).context("encoding JSON")?;
    writeln!(std::io::stdout().lock(), "{text}").context("writing to stdout")
}

pub fn print_line(text: &str) -> anyhow::Result<()> {
    writeln!(std::io::stdout().lock(), "{text}").context("writing to stdout")
}

fn new_table() -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    table
}

fn status_name(status: ProcessStatus) -> &'static str {
    match status {
        ProcessStatus::Launching => "launching",
        ProcessStatus::Online => "online",
        ProcessStatus::Stopping => "stopping",
        ProcessStatus::Stopped => "stopped",
        ProcessStatus::Errored => "errored",
        ProcessStatus::WaitingRestart => "waiting-restart",
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

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

pub fn process_table(rows: &[ProcessInfo]) -> String {
    let mut table = new_table();
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
            row.id.to_string(),
            row.name.clone(),
            row.namespace.clone(),
            row.host.clone(),
            or_dash(row.pid),
            status_name(row.status).to_owned(),
            row.restarts.to_string(),
            row.uptime_ms.map_or_else(|| "-".to_owned(), short_duration),
            row.cpu
                .map_or_else(|| "-".to_owned(), |c| format!("{c:.0}%")),
            row.memory.map_or_else(|| "-".to_owned(), bytesize_short),
        ]);
    }
    table.to_string()
}

fn bytesize_short(bytes: u64) -> String {
    format!("{:.1}mb", bytes as f64 / 1_048_576.0)
}

pub fn agents_table(agents: &[AgentInfo]) -> String {
    let mut table = new_table();
    table.set_header(["role", "host", "pid", "version", "connected"]);
    for agent in agents {
        table.add_row([
            agent.role.clone(),
            agent.host.clone(),
            agent.pid.to_string(),
            agent.version.clone(),
            if agent.connected { "yes" } else { "no" }.to_owned(),
        ]);
    }
    table.to_string()
}

pub fn describe_table(app: &AppDescription) -> String {
    let (info, spec) = (&app.info, &app.spec);
    let mut table = new_table();
    let env = spec
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\n");
    let rows: Vec<(&str, String)> = vec![
        ("id", info.id.to_string()),
        ("name", info.name.clone()),
        ("namespace", info.namespace.clone()),
        ("instance", info.instance.to_string()),
        ("status", status_name(info.status).to_owned()),
        ("pid", or_dash(info.pid)),
        ("host", info.host.clone()),
        ("restarts", info.restarts.to_string()),
        (
            "uptime",
            info.uptime_ms
                .map_or_else(|| "-".to_owned(), short_duration),
        ),
        ("last exit code", or_dash(info.exit_code)),
        ("last signal", or_dash(info.signal.clone())),
        ("command", spec.argv.join(" ")),
        ("cwd", spec.cwd.clone()),
        ("autorestart", spec.autorestart.to_string()),
        ("max restarts", spec.max_restarts.to_string()),
        ("min uptime", format!("{} ms", spec.min_uptime_ms)),
        ("restart delay", format!("{} ms", spec.restart_delay_ms)),
        (
            "exp backoff restart delay",
            format!("{} ms", spec.exp_backoff_restart_delay_ms),
        ),
        ("stop exit codes", format!("{:?}", spec.stop_exit_codes)),
        ("kill signal", spec.kill_signal.clone()),
        ("kill timeout", format!("{} ms", spec.kill_timeout_ms)),
        (
            "env (set for the app)",
            if env.is_empty() { "-".to_owned() } else { env },
        ),
    ];
    for (key, value) in rows {
        table.add_row([key.to_owned(), value]);
    }
    table.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_pm2() {
        assert_eq!(short_duration(1500), "1s");
        assert_eq!(short_duration(125_000), "2m");
        assert_eq!(short_duration(7_200_000), "2h");
        assert_eq!(short_duration(200_000_000), "2D");
    }
}
