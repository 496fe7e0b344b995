//! `zpm describe`: everything about one app instance, as a two-column table.

use crate::output::{bytesize_short, new_table, or_dash, printable, short_duration, shown_status};
use std::time::{Duration, UNIX_EPOCH};
use zpm_proto::commands::AppDescription;
use zpm_proto::health::Health;
use zpm_proto::logfiles::{LogFormat, LogTarget, Rotation};
use zpm_proto::ready::{ExecMode, Readiness};
use zpm_proto::{AppSpec, RestartReason, RestartRecord};

pub fn describe_table(app: &AppDescription) -> String {
    let (info, spec) = (&app.info, &app.spec);
    let mut table = new_table(false);
    let env = spec
        .env
        .iter()
        .map(|(k, v)| printable(&format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rows: Vec<(&str, String)> = vec![
        ("id", info.id.to_string()),
        ("name", printable(&info.name)),
        ("namespace", printable(&info.namespace)),
        ("instance", info.instance.to_string()),
        ("status", shown_status(info).to_owned()),
        (
            "status text",
            or_dash(info.status_text.as_deref().map(printable)),
        ),
        ("pid", or_dash(info.pid)),
        ("host", printable(&info.host)),
        ("restarts", info.restarts.to_string()),
        ("cpu", or_dash(info.cpu.map(|c| format!("{c:.1}%")))),
        ("memory", or_dash(info.memory.map(bytesize_short))),
        (
            "max memory restart",
            or_dash(spec.max_memory_restart.map(bytesize_short)),
        ),
        ("last restarts", history(&app.restarts)),
        (
            "uptime",
            info.uptime_ms
                .map_or_else(|| "-".to_owned(), short_duration),
        ),
        ("last exit code", or_dash(info.exit_code)),
        (
            "last signal",
            or_dash(info.signal.as_deref().map(printable)),
        ),
        ("last error", or_dash(info.error.as_deref().map(printable))),
        ("command", printable(&spec.argv.join(" "))),
        ("cwd", printable(&spec.cwd)),
        ("autorestart", spec.autorestart.to_string()),
        ("max restarts", spec.max_restarts.to_string()),
        ("min uptime", format!("{} ms", spec.min_uptime_ms)),
        ("restart delay", format!("{} ms", spec.restart_delay_ms)),
        (
            "exp backoff restart delay",
            format!("{} ms", spec.exp_backoff_restart_delay_ms),
        ),
        ("stop exit codes", format!("{:?}", spec.stop_exit_codes)),
        ("kill signal", printable(&spec.kill_signal)),
        ("kill timeout", format!("{} ms", spec.kill_timeout_ms)),
    ];
    rows.extend(serving_rows(spec));
    rows.push(("health now", health_now(info.health.as_ref())));
    rows.push((
        "cron restart",
        or_dash(spec.cron_restart.as_deref().map(printable)),
    ));
    rows.extend(dependency_rows(spec, &info.waiting));
    rows.extend(app.logs.as_ref().map_or_else(Vec::new, log_rows));
    rows.push((
        "env (set for the app)",
        if env.is_empty() { "-".to_owned() } else { env },
    ));
    rows.push(("env rule", env_rule(&spec.env_origin)));
    for (key, value) in rows {
        table.add_row([key.to_owned(), value]);
    }
    table.to_string()
}

/// What it starts after, and what it waits for now.
fn dependency_rows(spec: &AppSpec, waiting: &[String]) -> Vec<(&'static str, String)> {
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            printable(&items.join(", "))
        }
    };
    let mut rows = vec![(
        "depends on",
        list(spec.depends_on.iter().map(ToString::to_string).collect()),
    )];
    if spec.depends_timeout_ms.is_some() || !spec.depends_on.is_empty() {
        let ms = spec
            .depends_timeout_ms
            .unwrap_or(zpm_proto::depends::DEFAULT_TIMEOUT_MS);
        rows.push(("depends timeout", format!("{ms} ms")));
    }
    rows.push(("waiting for", list(waiting.to_vec())));
    rows
}

/// The environment rule, stated where users look for it.
fn env_rule(origin: &zpm_proto::EnvOrigin) -> String {
    let mut sources = vec!["this shell".to_owned()];
    sources.extend(origin.file.iter().map(|f| printable(f)));
    sources.extend(origin.env_files.iter().map(|f| printable(f)));
    format!(
        "kept as started; `restart --update-env` reads {} again{}",
        sources.join(", "),
        if origin.overrides.is_empty() {
            String::new()
        } else {
            format!(
                " (--env-var {} kept)",
                printable(&origin.overrides.join(", "))
            )
        }
    )
}

/// How it serves: shared sockets, exec mode, readiness, watchdog, health checks,
/// per-instance variables.
fn serving_rows(spec: &AppSpec) -> Vec<(&'static str, String)> {
    let listen = if spec.listen.is_empty() {
        "-".to_owned()
    } else {
        printable(&spec.listen.join(", "))
    };
    let mode = match spec.exec_mode {
        ExecMode::Fork => "fork",
        ExecMode::Cluster => "cluster",
    };
    vec![
        ("listen", listen),
        ("exec mode", mode.to_owned()),
        ("readiness", readiness(&spec.ready)),
        (
            "watchdog",
            or_dash(spec.ready.watchdog_ms.map(|ms| format!("{ms} ms"))),
        ),
        ("health", health(&spec.health)),
        ("watch", watch(&spec.watch)),
        (
            "instance var",
            printable(spec.instance_var.as_deref().unwrap_or("NODE_APP_INSTANCE")),
        ),
        (
            "increment var",
            or_dash(spec.increment_var.as_deref().map(printable)),
        ),
    ]
}

/// `on: /srv/app/src, ignore *.log, delay 500 ms` (`cwd` when no path is named), or
/// `off` (with what `zpm watch` would watch, if anything was set).
fn watch(watch: &zpm_proto::watch::Watch) -> String {
    if watch.is_default() {
        return "off".to_owned();
    }
    let paths = if watch.paths.is_empty() {
        "cwd".to_owned()
    } else {
        watch.paths.join(", ")
    };
    let mut parts = vec![paths];
    if !watch.ignore.is_empty() {
        parts.push(format!("ignore {}", watch.ignore.join(" ")));
    }
    parts.push(format!("delay {} ms", watch.delay_ms));
    let state = if watch.enabled { "on" } else { "off" };
    printable(&format!("{state}: {}", parts.join(", ")))
}

/// `wait_ready, http http://…/health, timeout 3000 ms, strict`, or `-` without a gate.
fn readiness(ready: &Readiness) -> String {
    if !ready.gated() {
        return "-".to_owned();
    }
    let mut parts = Vec::new();
    if ready.wait_ready {
        parts.push("wait_ready".to_owned());
    }
    let probes = [
        ("http", &ready.http),
        ("tcp", &ready.tcp),
        ("cmd", &ready.cmd),
        ("log", &ready.log),
    ];
    for (kind, probe) in probes {
        if let Some(probe) = probe {
            parts.push(format!("{kind} {}", printable(probe)));
        }
    }
    parts.push(format!("timeout {} ms", ready.timeout_ms));
    if ready.strict {
        parts.push("strict".to_owned());
    }
    parts.join(", ")
}

/// `http http://…/health, every 10000 ms, timeout 5000 ms, 3 retries`, or `-` without a
/// check.
fn health(health: &Health) -> String {
    if !health.enabled() {
        return "-".to_owned();
    }
    let checks = [
        ("http", &health.http),
        ("tcp", &health.tcp),
        ("cmd", &health.cmd),
    ];
    let mut parts: Vec<String> = checks
        .into_iter()
        .filter_map(|(kind, check)| Some(format!("{kind} {}", printable(check.as_ref()?))))
        .collect();
    parts.push(format!("every {} ms", health.interval_ms));
    parts.push(format!("timeout {} ms", health.timeout_ms));
    parts.push(match health.retries {
        1 => "1 retry".to_owned(),
        n => format!("{n} retries"),
    });
    parts.join(", ")
}

/// What the current run's checks found: `2 failed in a row (health_http failed), 4
/// skipped`, `passing`, or `-` before any check changed anything.
fn health_now(status: Option<&zpm_proto::health::HealthStatus>) -> String {
    let Some(status) = status else {
        return "-".to_owned();
    };
    let text = match (status.failures, &status.last) {
        (0, _) => "passing".to_owned(),
        (n, Some(last)) => format!("{n} failed in a row ({})", printable(last)),
        (n, None) => format!("{n} failed in a row"),
    };
    match status.skipped {
        0 => text,
        n => format!("{text}, {n} skipped (a check outlasted the interval)"),
    }
}

/// Where its output goes, as God resolved it (`app.describe`'s `logs`).
fn log_rows(target: &LogTarget) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("out log", printable(&target.out_file)),
        ("error log", printable(&target.error_file)),
    ];
    if let Some(combined) = &target.log_file {
        rows.push(("combined log", printable(combined)));
    }
    let format = match target.format {
        LogFormat::Raw => "raw",
        LogFormat::Json => "json",
    };
    let format = match &target.date_format {
        Some(pattern) => format!("{format}, time {}", printable(pattern)),
        None => format.to_owned(),
    };
    rows.push(("log format", format));
    rows.push(("rotation", rotation(&target.rotation)));
    rows
}

/// `10.0mb, keep 30, gzip` or `never`.
fn rotation(rotation: &Rotation) -> String {
    let Some(max) = rotation.max_size else {
        return "never".to_owned();
    };
    let gzip = if rotation.compress { ", gzip" } else { "" };
    format!(
        "past {}, keep {}{gzip}",
        bytesize_short(max),
        rotation.retain
    )
}

/// One line per recorded restart, oldest first: when, and why.
fn history(records: &[RestartRecord]) -> String {
    if records.is_empty() {
        return "-".to_owned();
    }
    records
        .iter()
        .map(|r| {
            let at = UNIX_EPOCH + Duration::from_millis(r.at_ms);
            format!(
                "{} {}",
                humantime::format_rfc3339_seconds(at),
                reason(&r.reason)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn reason(reason: &RestartReason) -> String {
    match reason {
        RestartReason::Exited { code, signal } => match (code, signal) {
            (_, Some(signal)) => format!("killed by {}", printable(signal)),
            (Some(code), None) => format!("exited with code {code}"),
            (None, None) => "exited".to_owned(),
        },
        RestartReason::MaxMemory { memory, limit } => format!(
            "max_memory_restart ({} over {})",
            bytesize_short(*memory),
            bytesize_short(*limit)
        ),
        RestartReason::User => "restarted by the user".to_owned(),
        RestartReason::SpawnerReplaced => "its spawner died; started again".to_owned(),
        RestartReason::Errored { restarts } => {
            format!("errored: crash loop, gave up after {restarts} restarts")
        }
        RestartReason::Reload => "reloaded".to_owned(),
        RestartReason::Watchdog { timeout_ms } => {
            format!("watchdog: no WATCHDOG=1 for {timeout_ms} ms")
        }
        RestartReason::Cron => "cron_restart schedule".to_owned(),
        RestartReason::Watch { path } => format!("watch: {} changed", printable(path)),
        RestartReason::Health { failures, last } => {
            format!(
                "health: {failures} failed checks in a row ({})",
                printable(last)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> LogTarget {
        LogTarget {
            id: 3,
            name: "api".into(),
            instance: 0,
            out_file: "/l/api-out.log".into(),
            error_file: "/dev/null".into(),
            log_file: None,
            format: LogFormat::Raw,
            date_format: None,
            rotation: Rotation::default(),
        }
    }

    #[test]
    fn the_watch_row_says_on_or_off_and_what() {
        let mut w = zpm_proto::watch::Watch {
            enabled: true,
            ..Default::default()
        };
        assert_eq!(watch(&w), "on: cwd, delay 500 ms");
        w.paths = vec!["/a/src".into(), "/a/lib".into()];
        w.ignore = vec!["*.log".into()];
        w.enabled = false;
        assert_eq!(watch(&w), "off: /a/src, /a/lib, ignore *.log, delay 500 ms");
    }

    #[test]
    fn serving_rows_show_sockets_mode_readiness_and_variables() {
        let mut spec = AppSpec::new("api", vec!["node".into(), "/a/s.js".into()], "/a");
        let plain = serving_rows(&spec);
        let keys: Vec<&str> = plain.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "listen",
                "exec mode",
                "readiness",
                "watchdog",
                "health",
                "watch",
                "instance var",
                "increment var"
            ]
        );
        let values: Vec<&str> = plain.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            values,
            ["-", "fork", "-", "-", "-", "off", "NODE_APP_INSTANCE", "-"]
        );
        spec.listen = vec!["8000".into(), "unix:/run/a\n.sock".into()];
        spec.exec_mode = ExecMode::Cluster;
        spec.ready = Readiness {
            wait_ready: true,
            strict: true,
            http: Some("http://127.0.0.1:8000/health".into()),
            log: Some("^listening".into()),
            watchdog_ms: Some(30_000),
            ..Readiness::default()
        };
        spec.health = Health {
            http: Some("http://127.0.0.1:8000/health".into()),
            ..Health::default()
        };
        spec.instance_var = Some("INSTANCE_ID".into());
        spec.increment_var = Some("PORT".into());
        let full = serving_rows(&spec);
        let values: Vec<&str> = full.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            values,
            [
                r"8000, unix:/run/a\n.sock",
                "cluster",
                "wait_ready, http http://127.0.0.1:8000/health, log ^listening, timeout 3000 ms, strict",
                "30000 ms",
                "http http://127.0.0.1:8000/health, every 10000 ms, timeout 5000 ms, 3 retries",
                "off",
                "INSTANCE_ID",
                "PORT"
            ]
        );
        let probe = Readiness {
            tcp: Some("8000".into()),
            timeout_ms: 500,
            ..Readiness::default()
        };
        assert_eq!(readiness(&probe), "tcp 8000, timeout 500 ms");
        let watchdog_only = Readiness {
            watchdog_ms: Some(1000),
            ..Readiness::default()
        };
        assert_eq!(readiness(&watchdog_only), "-", "a watchdog is no gate");
        let checks = Health {
            tcp: Some("db:5432".into()),
            cmd: Some("pg_isready\n-q".into()),
            interval_ms: 500,
            timeout_ms: 100,
            retries: 1,
            ..Health::default()
        };
        assert_eq!(
            health(&checks),
            r"tcp db:5432, cmd pg_isready\n-q, every 500 ms, timeout 100 ms, 1 retry"
        );
        let settings_only = Health {
            retries: 7,
            ..Health::default()
        };
        assert_eq!(health(&settings_only), "-", "no check, no health checks");
    }

    #[test]
    fn status_text_and_last_error_have_rows() {
        let info = zpm_proto::ProcessInfo {
            id: 1,
            name: "api".into(),
            namespace: "default".into(),
            instance: 0,
            host: "h".into(),
            pid: None,
            status: zpm_proto::ProcessStatus::Errored,
            restarts: 0,
            uptime_ms: None,
            exit_code: None,
            signal: None,
            cpu: None,
            memory: None,
            max_memory_restart: None,
            error: Some("cannot bind 127.0.0.1:80: Permission denied".into()),
            status_text: Some("warming\u{1b} caches".into()),
            health: None,
            waiting: Vec::new(),
        };
        let mut app = AppDescription {
            info,
            spec: AppSpec::new("api", vec!["/bin/true".into()], "/"),
            restarts: Vec::new(),
            logs: None,
        };
        // `│ key ┆ value │`
        let row = |table: &str, key: &str| {
            table
                .lines()
                .map(|line| line.trim_matches(['│', ' ']))
                .find_map(|line| {
                    let (k, v) = line.split_once('┆')?;
                    (k.trim() == key).then(|| v.trim().to_owned())
                })
                .unwrap_or_else(|| panic!("no {key} row in {table}"))
        };
        let table = describe_table(&app);
        assert_eq!(
            row(&table, "last error"),
            "cannot bind 127.0.0.1:80: Permission denied"
        );
        assert_eq!(row(&table, "status text"), r"warming\x1b caches");
        app.info.error = None;
        app.info.status_text = None;
        let table = describe_table(&app);
        assert_eq!(row(&table, "last error"), "-");
        assert_eq!(row(&table, "status text"), "-");
    }

    #[test]
    fn log_rows_show_files_format_and_rotation() {
        let plain = log_rows(&target());
        let keys: Vec<&str> = plain.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["out log", "error log", "log format", "rotation"]);
        assert_eq!(plain[1].1, "/dev/null");
        assert_eq!((plain[2].1.as_str(), plain[3].1.as_str()), ("raw", "never"));
        let full = LogTarget {
            log_file: Some("/l/api\n.log".into()),
            format: LogFormat::Json,
            date_format: Some("%H:%M".into()),
            rotation: Rotation {
                max_size: Some(10 << 20),
                retain: 5,
                compress: true,
            },
            ..target()
        };
        let full = log_rows(&full);
        assert_eq!(full[2], ("combined log", r"/l/api\n.log".to_owned()));
        assert_eq!(full[3].1, "json, time %H:%M");
        assert_eq!(full[4].1, "past 10.0mb, keep 5, gzip");
    }
}
