//! Log options: PM2's keys and flags, paths relative to the app's cwd, `time`, and
//! messages naming the key.

use super::{at, error_text, resolve, temp_dir, write};
use crate::ecosystem::{LogDraft, StartOptions};
use zpm_proto::logfiles::{LogFormat, TIME_FORMAT};

#[test]
fn ecosystem_keys_become_the_spec_logs() {
    let (_keep, dir) = temp_dir();
    write(&dir, "sub/a.sh", "");
    write(
        &dir,
        "e.json",
        r#"{"apps": [{"name": "api", "script": "a.sh", "cwd": "sub",
            "out_file": "o.log", "error_file": "/dev/null", "log_file": "/tmp/all.log",
            "combine_logs": true, "time": true, "log_type": "json",
            "log_max_size": "10M", "log_retain": 5, "log_compress": true},
           {"name": "b", "script": "sub/a.sh", "log_file": true, "log_date_format": "%H:%M",
            "time": true, "merge_logs": false}]}"#,
    );
    let resolved = resolve(&dir, "e.json", &StartOptions::default()).unwrap();
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
    let api = &resolved.apps[0].logs;
    assert_eq!(
        api.out_file.as_deref(),
        Some(at(&dir, "sub/o.log").as_str())
    );
    assert_eq!(api.error_file.as_deref(), Some("/dev/null"));
    assert_eq!(api.log_file.as_deref(), Some("/tmp/all.log"));
    assert!(api.merge_logs);
    assert_eq!(api.date_format.as_deref(), Some(TIME_FORMAT));
    assert_eq!(api.format, Some(LogFormat::Json));
    assert_eq!(
        (api.max_size, api.retain, api.compress),
        (Some(10 << 20), Some(5), Some(true))
    );
    let b = &resolved.apps[1].logs;
    assert_eq!(
        b.log_file.as_deref(),
        Some(""),
        "true: the default NAME.log"
    );
    assert_eq!(b.date_format.as_deref(), Some("%H:%M"), "the format wins");
    assert!(!b.merge_logs && b.out_file.is_none() && b.format.is_none());
}

#[test]
fn flags_win_and_resolve_against_the_app_cwd() {
    let (_keep, dir) = temp_dir();
    write(&dir, "app/a.sh", "");
    write(
        &dir,
        "e.json",
        r#"{"apps": [{"script": "a.sh", "cwd": "app", "out_file": "file.log", "log_type": "json"}]}"#,
    );
    let options = StartOptions {
        logs: LogDraft {
            out_file: Some("../flag.log".into()),
            log_file: Some(String::new()),
            time: Some(true),
            format: Some(LogFormat::Raw),
            ..LogDraft::default()
        },
        ..StartOptions::default()
    };
    let logs = &resolve(&dir, "e.json", &options).unwrap().apps[0].logs;
    assert_eq!(
        logs.out_file.as_deref(),
        Some(at(&dir, "app/../flag.log").as_str())
    );
    assert_eq!(logs.log_file.as_deref(), Some(""));
    assert_eq!(logs.format, Some(LogFormat::Raw));
    assert_eq!(logs.date_format.as_deref(), Some(TIME_FORMAT));
    let plain = resolve(&dir, "app/a.sh", &StartOptions::default()).unwrap();
    assert!(plain.apps[0].logs.is_default(), "nothing said: defaults");
}

#[test]
fn bad_values_name_the_key() {
    let (_keep, dir) = temp_dir();
    write(&dir, "a.sh", "");
    let error = |extra: &str| {
        let file = format!(r#"{{"apps": [{{"name": "w", "script": "a.sh", {extra}}}]}}"#);
        write(&dir, "e.json", &file);
        error_text(resolve(&dir, "e.json", &StartOptions::default()))
    };
    assert_eq!(
        error(r#""out_file": 3"#),
        r#"e.json: app "w": key "out_file" must be a file path, got number 3"#
    );
    assert!(error(r#""log_file": """#).contains(r#"key "log_file" must be a file path"#));
    assert!(error(r#""log_type": "xml""#).contains(r#"key "log_type" must be "raw" or "json""#));
    assert!(error(r#""log_max_size": "lots""#).contains(r#"key "log_max_size""#));
    assert_eq!(
        error(r#""log_retain": 1001"#),
        r#"e.json: app "w": invalid log_retain 1001: at most 1000 rotated files"#
    );
    assert!(error(r#""log_max_size": 10"#).contains("invalid log_max_size 10 bytes"));
    assert!(
        error(r#""log_date_format": "%Q%""#)
            .starts_with(r#"e.json: app "w": invalid log_date_format "%Q%""#)
    );
    assert!(error(r#""error_file": "x\u0000y""#).contains("invalid error_file"));
    let long = "x".repeat(5000);
    assert!(error(&format!(r#""out_file": "{long}""#)).contains("at most 4096"));
}
