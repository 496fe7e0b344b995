//! Rules for an app's log options (`AppSpec.logs`). Each takes the name the caller knows
//! the value by (`logs.out_file` on the wire, `out_file` in an ecosystem file), so every
//! message names the key the user wrote.

use super::Invalid;
use crate::logfiles::AppLogs;

/// Longest log file path, in bytes (Linux's `PATH_MAX`).
pub const MAX_LOG_PATH_BYTES: usize = 4096;
/// Longest `date_format` pattern, in bytes.
pub const MAX_DATE_FORMAT_BYTES: usize = 128;
/// Most rotated files kept per log file.
pub const MAX_LOG_RETAIN: u32 = 1000;
/// Smallest `max_size`: below it a file would rotate on nearly every line.
pub const MIN_LOG_MAX_SIZE: u64 = 1024;

/// A log file path: absolute (the CLI resolves relative ones), no NUL byte, at most
/// [`MAX_LOG_PATH_BYTES`].
pub fn log_path(field: &str, path: &str) -> Result<(), Invalid> {
    if path.len() > MAX_LOG_PATH_BYTES {
        return Err(Invalid::new(format!(
            "invalid {field}: the path is {} bytes, at most {MAX_LOG_PATH_BYTES}",
            path.len()
        )));
    }
    if path.contains('\0') {
        return Err(Invalid::new(format!(
            "invalid {field} {path:?}: it contains a NUL byte"
        )));
    }
    if !path.starts_with('/') {
        return Err(Invalid::new(format!(
            "invalid {field} {path:?}: it must be an absolute path"
        )));
    }
    Ok(())
}

/// A strftime-like timestamp pattern (jiff's `strtime`): at most
/// [`MAX_DATE_FORMAT_BYTES`], no control characters (a line break in every prefix would
/// split every line), and one jiff can format.
pub fn date_format(field: &str, pattern: &str) -> Result<(), Invalid> {
    let problem = if pattern.len() > MAX_DATE_FORMAT_BYTES {
        format!(
            "it is {} bytes, at most {MAX_DATE_FORMAT_BYTES}",
            pattern.len()
        )
    } else if pattern.chars().any(char::is_control) {
        "it cannot contain control characters".to_owned()
    } else if let Err(e) = sample_timestamp(pattern) {
        format!("{e} (a strftime pattern such as \"%Y-%m-%d %H:%M:%S\")")
    } else {
        return Ok(());
    };
    Err(Invalid::new(format!(
        "invalid {field} {pattern:?}: {problem}"
    )))
}

/// Formats a fixed instant with `pattern`: what fails here fails for every instant.
fn sample_timestamp(pattern: &str) -> Result<String, jiff::Error> {
    let zoned = jiff::Timestamp::UNIX_EPOCH.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    jiff::fmt::strtime::format(pattern, &zoned)
}

/// Rotated files kept: at most [`MAX_LOG_RETAIN`].
pub fn log_retain(field: &str, retain: u32) -> Result<(), Invalid> {
    if retain > MAX_LOG_RETAIN {
        return Err(Invalid::new(format!(
            "invalid {field} {retain}: at most {MAX_LOG_RETAIN} rotated files"
        )));
    }
    Ok(())
}

/// The size past which a file rotates: at least [`MIN_LOG_MAX_SIZE`].
pub fn log_max_size(field: &str, bytes: u64) -> Result<(), Invalid> {
    if bytes < MIN_LOG_MAX_SIZE {
        return Err(Invalid::new(format!(
            "invalid {field} {bytes} bytes: at least {MIN_LOG_MAX_SIZE} (1K)"
        )));
    }
    Ok(())
}

/// Every rule for `AppSpec.logs`, with the wire names of its fields.
pub fn app_logs(logs: &AppLogs) -> Result<(), Invalid> {
    let paths = [
        ("logs.out_file", &logs.out_file),
        ("logs.error_file", &logs.error_file),
        ("logs.log_file", &logs.log_file),
    ];
    for (field, path) in paths {
        match path.as_deref() {
            // An empty `log_file` is the default combined file (`--log` without a path).
            None => {}
            Some("") if field == "logs.log_file" => {}
            Some(path) => log_path(field, path)?,
        }
    }
    if let Some(pattern) = &logs.date_format {
        date_format("logs.date_format", pattern)?;
    }
    if let Some(retain) = logs.retain {
        log_retain("logs.retain", retain)?;
    }
    if let Some(bytes) = logs.max_size {
        log_max_size("logs.max_size", bytes)?;
    }
    Ok(())
}

/// Bytes of text the log options carry (counted in the spec's size cap).
pub(super) fn text_bytes(logs: &AppLogs) -> usize {
    [
        &logs.out_file,
        &logs.error_file,
        &logs.log_file,
        &logs.date_format,
    ]
    .into_iter()
    .flatten()
    .map(String::len)
    .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<(), Invalid>) -> String {
        result.expect_err("should be refused").message().to_owned()
    }

    #[test]
    fn paths_are_absolute_short_and_without_nul() {
        assert!(log_path("out_file", "/var/log/api.log").is_ok());
        assert!(log_path("out_file", crate::logfiles::DISCARD).is_ok());
        assert_eq!(
            message(log_path("out_file", "logs/api.log")),
            r#"invalid out_file "logs/api.log": it must be an absolute path"#
        );
        assert_eq!(
            message(log_path("logs.error_file", "/a\0b")),
            r#"invalid logs.error_file "/a\0b": it contains a NUL byte"#
        );
        let long = format!("/{}", "x".repeat(MAX_LOG_PATH_BYTES));
        assert_eq!(
            message(log_path("log_file", &long)),
            "invalid log_file: the path is 4097 bytes, at most 4096"
        );
    }

    #[test]
    fn date_formats_are_short_printable_and_known_to_jiff() {
        assert!(date_format("log_date_format", "%Y-%m-%d %H:%M:%S%.3f%:z").is_ok());
        assert!(date_format("log_date_format", "plain text").is_ok());
        let long = "%Y".repeat(65);
        assert!(message(date_format("log_date_format", &long)).contains("130 bytes, at most 128"));
        assert!(message(date_format("d", "%H\n")).contains("control characters"));
        let bad = message(date_format("log_date_format", "%Q%"));
        assert!(
            bad.starts_with(r#"invalid log_date_format "%Q%": "#),
            "{bad}"
        );
    }

    #[test]
    fn retain_and_size_are_bounded() {
        assert!(log_retain("log_retain", 1000).is_ok());
        assert_eq!(
            message(log_retain("log_retain", 1001)),
            "invalid log_retain 1001: at most 1000 rotated files"
        );
        assert!(log_max_size("log_max_size", 1024).is_ok());
        assert!(message(log_max_size("log_max_size", 0)).contains("at least 1024"));
    }

    #[test]
    fn app_logs_names_the_wire_fields() {
        let mut logs = AppLogs {
            log_file: Some(String::new()),
            ..AppLogs::default()
        };
        assert!(app_logs(&logs).is_ok(), "an empty log_file is the default");
        logs.out_file = Some("rel.log".into());
        assert!(message(app_logs(&logs)).starts_with("invalid logs.out_file"));
        logs.out_file = None;
        logs.error_file = Some(String::new());
        assert!(message(app_logs(&logs)).starts_with("invalid logs.error_file"));
        logs.error_file = None;
        logs.retain = Some(5000);
        assert!(message(app_logs(&logs)).starts_with("invalid logs.retain 5000"));
        logs.retain = None;
        logs.date_format = Some("%Q%".into());
        assert!(message(app_logs(&logs)).starts_with("invalid logs.date_format"));
    }
}
