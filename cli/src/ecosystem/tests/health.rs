//! Health checks: the `health_*` keys in every format (one walk), the `--health-*` flags
//! over them, defaults, and messages naming the key.

use super::serving::{assert_key_errors, flags, key_error};
use super::{error_text, resolve, s, temp_dir, write};
use crate::ecosystem::{ServingDraft, StartOptions};
use zpm_proto::health::Health;

#[test]
fn json_keys_become_the_spec() {
    let (_keep, dir) = temp_dir();
    write(&dir, "a.sh", "");
    write(
        &dir,
        "e.json",
        r#"{"apps": [{"name": "api", "script": "a.sh",
            "health_http": "http://127.0.0.1:8000/health", "health_tcp": 8000,
            "health_cmd": "curl -fs localhost:8000", "health_interval": "30s",
            "health_timeout": 1500, "health_retries": 5},
           {"name": "ms", "script": "a.sh", "health_tcp": "db:5432",
            "health_interval": 250, "health_timeout": "2s"},
           {"name": "plain", "script": "a.sh"}]}"#,
    );
    let resolved = resolve(&dir, "e.json", &StartOptions::default()).unwrap();
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
    let [api, ms, plain] = &resolved.apps[..] else {
        panic!("three apps expected")
    };
    assert_eq!(
        api.health,
        Health {
            http: Some(s("http://127.0.0.1:8000/health")),
            tcp: Some(s("8000")),
            cmd: Some(s("curl -fs localhost:8000")),
            interval_ms: 30_000,
            timeout_ms: 1500,
            retries: 5,
        }
    );
    assert_eq!(
        ms.health,
        Health {
            tcp: Some(s("db:5432")),
            interval_ms: 250,
            timeout_ms: 2000,
            ..Health::default()
        },
        "what is not said has the defaults"
    );
    assert!(plain.health.is_default() && !plain.health.enabled());
}

#[test]
fn yaml_and_toml_go_through_the_same_walk() {
    let (_keep, dir) = temp_dir();
    write(&dir, "app.py", "");
    let yaml = "apps:\n  - name: y\n    script: app.py\n    health_tcp: \"localhost:8000\"\n    health_interval: \"1m\"\n    health_timeout: 250\n    health_retries: 1\n";
    write(&dir, "e.yaml", yaml);
    let app = &resolve(&dir, "e.yaml", &StartOptions::default())
        .unwrap()
        .apps[0];
    assert_eq!(
        app.health,
        Health {
            tcp: Some(s("localhost:8000")),
            interval_ms: 60_000,
            timeout_ms: 250,
            retries: 1,
            ..Health::default()
        }
    );
    let toml = "[[apps]]\nname = \"t\"\nscript = \"app.py\"\nhealth_cmd = \"test -e /tmp\"\nhealth_tcp = 9000\nhealth_interval = 5000\nhealth_timeout = \"3s\"\n";
    write(&dir, "e.toml", toml);
    let app = &resolve(&dir, "e.toml", &StartOptions::default())
        .unwrap()
        .apps[0];
    assert_eq!(
        app.health,
        Health {
            cmd: Some(s("test -e /tmp")),
            tcp: Some(s("9000")),
            interval_ms: 5000,
            timeout_ms: 3000,
            ..Health::default()
        }
    );
}

#[test]
fn flags_win_over_the_file() {
    let (_keep, dir) = temp_dir();
    write(&dir, "a.sh", "");
    write(
        &dir,
        "e.json",
        r#"{"apps": [{"script": "a.sh", "health_http": "http://localhost:8000/",
            "health_interval": 9000, "health_timeout": 900, "health_retries": 9}]}"#,
    );
    let options = flags(ServingDraft {
        health_tcp: Some(s("8001")),
        health_interval_ms: Some(2000),
        health_retries: Some(2),
        ..ServingDraft::default()
    });
    let app = &resolve(&dir, "e.json", &options).unwrap().apps[0];
    assert_eq!(
        app.health,
        Health {
            http: Some(s("http://localhost:8000/")),
            tcp: Some(s("8001")),
            cmd: None,
            interval_ms: 2000,
            timeout_ms: 900,
            retries: 2,
        },
        "what no flag says stays as the file says"
    );
    let options = flags(ServingDraft {
        health_http: Some(s("http://localhost:9000/up")),
        ..ServingDraft::default()
    });
    let app = &resolve(&dir, "e.json", &options).unwrap().apps[0];
    assert_eq!(app.health.http.as_deref(), Some("http://localhost:9000/up"));
    let app = &resolve(
        &dir,
        "a.sh",
        &flags(ServingDraft {
            health_cmd: Some(s("true")),
            health_timeout_ms: Some(100),
            ..ServingDraft::default()
        }),
    )
    .unwrap()
    .apps[0];
    assert_eq!(
        app.health,
        Health {
            cmd: Some(s("true")),
            timeout_ms: 100,
            ..Health::default()
        }
    );
}

#[test]
fn settings_without_a_check_are_a_warning() {
    let (_keep, dir) = temp_dir();
    write(&dir, "a.sh", "");
    write(
        &dir,
        "e.json",
        r#"{"apps": [{"name": "w", "script": "a.sh", "health_interval": "5s", "health_retries": 2}]}"#,
    );
    let resolved = resolve(&dir, "e.json", &StartOptions::default()).unwrap();
    assert_eq!(
        resolved.warnings,
        [
            r#"e.json: app "w": health_interval, health_retries without a health check (health_http, health_tcp or health_cmd): ignored"#
        ]
    );
    let resolved = resolve(
        &dir,
        "a.sh",
        &flags(ServingDraft {
            health_timeout_ms: Some(100),
            ..ServingDraft::default()
        }),
    )
    .unwrap();
    assert_eq!(
        resolved.warnings,
        ["health_timeout without a health check (health_http, health_tcp or health_cmd): ignored"]
    );
}

#[test]
fn bad_values_name_the_key() {
    assert_key_errors(&[
        (
            r#""health_http": "https://x/""#,
            r#"invalid health_http "https://x/": only http:// URLs are probed"#,
        ),
        (
            r#""health_http": """#,
            r#"key "health_http" must be a non-empty string, got string """#,
        ),
        (
            r#""health_http": 8000"#,
            r#"key "health_http" must be a string, got number 8000"#,
        ),
        (
            r#""health_tcp": "x""#,
            r#"invalid health_tcp "x": expected PORT or HOST:PORT"#,
        ),
        (
            r#""health_tcp": 70000"#,
            r#"invalid health_tcp "70000": expected PORT or HOST:PORT"#,
        ),
        (
            r#""health_tcp": -5"#,
            r#"key "health_tcp" must be a port, or "HOST:PORT", got number -5"#,
        ),
        (
            r#""health_tcp": true"#,
            r#"key "health_tcp" must be a port, or "HOST:PORT", got boolean true"#,
        ),
        (
            r#""health_cmd": " ""#,
            r#"key "health_cmd" must be a non-empty string, got string " ""#,
        ),
        (
            r#""health_cmd": ["curl"]"#,
            r#"key "health_cmd" must be a string, got an array"#,
        ),
        (
            r#""health_cmd": "true", "health_interval": "often""#,
            r#"key "health_interval" must be milliseconds or a duration such as "1s", got string "often""#,
        ),
        (
            r#""health_cmd": "true", "health_interval": -1"#,
            r#"key "health_interval" must be a whole number of milliseconds, 0 or more, got number -1"#,
        ),
        (
            r#""health_cmd": "true", "health_interval": 50"#,
            "invalid health_interval 50 ms: expected 100 ms to one day",
        ),
        (
            r#""health_cmd": "true", "health_interval": "2 days""#,
            "invalid health_interval 172800000 ms: expected 100 ms to one day",
        ),
        (
            r#""health_cmd": "true", "health_timeout": 0"#,
            "invalid health_timeout 0 ms: expected 1 ms to one day",
        ),
        (
            r#""health_cmd": "true", "health_timeout": [5]"#,
            r#"key "health_timeout" must be a number of milliseconds or a duration such as "1s", got an array"#,
        ),
        (
            r#""health_cmd": "true", "health_retries": 0"#,
            "invalid health_retries 0: expected 1 to 1000",
        ),
        (
            r#""health_cmd": "true", "health_retries": 1001"#,
            "invalid health_retries 1001: expected 1 to 1000",
        ),
        (
            r#""health_cmd": "true", "health_retries": "3""#,
            r#"key "health_retries" must be a number, got string "3""#,
        ),
        (
            r#""health_cmd": "true", "health_retries": 1.5"#,
            r#"key "health_retries" must be a whole number, 0 or more, got number 1.5"#,
        ),
    ]);
    assert!(
        key_error(r#""health_cmd": "a\u0000b""#)
            .contains("invalid health_cmd: expected a command of 1 to 4096 bytes without NUL")
    );
}

#[test]
fn bad_flag_values_are_refused_with_the_same_rules() {
    let (_keep, dir) = temp_dir();
    write(&dir, "a.sh", "");
    let error = |serving: ServingDraft| error_text(resolve(&dir, "a.sh", &flags(serving)));
    assert_eq!(
        error(ServingDraft {
            health_tcp: Some(s("db:")),
            ..ServingDraft::default()
        }),
        r#"invalid health_tcp "db:": expected PORT or HOST:PORT"#
    );
    assert_eq!(
        error(ServingDraft {
            health_http: Some(s("localhost:8000")),
            ..ServingDraft::default()
        }),
        r#"invalid health_http "localhost:8000": only http:// URLs are probed"#
    );
    assert_eq!(
        error(ServingDraft {
            health_cmd: Some(s("true")),
            health_retries: Some(0),
            ..ServingDraft::default()
        }),
        "invalid health_retries 0: expected 1 to 1000"
    );
    assert_eq!(
        error(ServingDraft {
            health_cmd: Some(s("true")),
            health_interval_ms: Some(99),
            ..ServingDraft::default()
        }),
        "invalid health_interval 99 ms: expected 100 ms to one day"
    );
}
