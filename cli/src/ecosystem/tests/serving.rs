//! How an app serves: `listen`, `exec_mode`, readiness, `watchdog_sec`, the per-instance
//! variables — keys, flags, cluster mode inferred for Node scripts, messages naming the key.

use super::{at, error_text, resolve, s, temp_dir, write};
use crate::ecosystem::{ServingDraft, StartOptions};
use zpm_proto::ready::{ExecMode, Readiness};

#[test]
fn ecosystem_keys_become_the_spec() {
    let (_keep, dir) = temp_dir();
    write(&dir, "sub/server.js", "");
    write(
        &dir,
        "e.json",
        r#"{"apps": [{"name": "api", "script": "server.js", "cwd": "sub", "instances": 2,
            "listen": [8000, "127.0.0.1:8001", "unix:run/api.sock", "unix:./x.sock",
                       "unix:/tmp/abs.sock"],
            "exec_mode": "cluster_mode", "wait_ready": true, "listen_timeout": "5s",
            "ready_strict": true, "ready_http": "http://127.0.0.1:8000/health",
            "ready_tcp": 8000, "ready_cmd": "curl -fs localhost:8000",
            "ready_log": "^listening on", "watchdog_sec": 2.5,
            "instance_var": "INSTANCE_ID", "increment_var": "PORT", "env": {"PORT": 3000}},
           {"name": "plain", "script": "sub/server.js", "instances": 4}]}"#,
    );
    let resolved = resolve(&dir, "e.json", &StartOptions::default()).unwrap();
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
    let [api, plain] = &resolved.apps[..] else {
        panic!("two apps expected")
    };
    assert_eq!(
        api.listen,
        [
            s("8000"),
            s("127.0.0.1:8001"),
            format!("unix:{}", at(&dir, "sub/run/api.sock")),
            format!("unix:{}", at(&dir, "sub/x.sock")),
            s("unix:/tmp/abs.sock"),
        ]
    );
    assert_eq!(api.exec_mode, ExecMode::Cluster);
    assert_eq!(
        api.ready,
        Readiness {
            wait_ready: true,
            timeout_ms: 5000,
            strict: true,
            http: Some(s("http://127.0.0.1:8000/health")),
            tcp: Some(s("8000")),
            cmd: Some(s("curl -fs localhost:8000")),
            log: Some(s("^listening on")),
            watchdog_ms: Some(2500),
        }
    );
    assert_eq!(
        (api.instance_var.as_deref(), api.increment_var.as_deref()),
        (Some("INSTANCE_ID"), Some("PORT"))
    );
    assert_eq!(
        plain.exec_mode,
        ExecMode::Fork,
        "in a file, only exec_mode sets the mode"
    );
    assert!(plain.listen.is_empty() && plain.ready.is_default());
    assert_eq!(
        (plain.instance_var.as_ref(), plain.increment_var.as_ref()),
        (None, None)
    );
}

#[test]
fn yaml_and_toml_take_single_values() {
    let (_keep, dir) = temp_dir();
    write(&dir, "app.py", "");
    let yaml = "apps:\n  - name: y\n    script: app.py\n    listen: 8000\n    exec_mode: fork\n    listen_timeout: 1500\n    ready_tcp: \"localhost:8000\"\n    watchdog_sec: \"500ms\"\n";
    write(&dir, "e.yaml", yaml);
    let app = &resolve(&dir, "e.yaml", &StartOptions::default())
        .unwrap()
        .apps[0];
    assert_eq!(app.listen, [s("8000")]);
    assert_eq!(app.exec_mode, ExecMode::Fork);
    assert_eq!(
        (
            app.ready.timeout_ms,
            app.ready.tcp.as_deref(),
            app.ready.watchdog_ms
        ),
        (1500, Some("localhost:8000"), Some(500))
    );
    let toml = "[[apps]]\nname = \"t\"\nscript = \"app.py\"\nlisten = \"[::1]:8443\"\nexec_mode = \"cluster\"\nwatchdog_sec = 30\nwait_ready = true\n";
    write(&dir, "e.toml", toml);
    let app = &resolve(&dir, "e.toml", &StartOptions::default())
        .unwrap()
        .apps[0];
    assert_eq!(app.listen, [s("[::1]:8443")]);
    assert_eq!(
        app.exec_mode,
        ExecMode::Cluster,
        "exec_mode is sent as given"
    );
    assert_eq!(app.ready.watchdog_ms, Some(30_000));
    assert!(app.ready.wait_ready);
    write(
        &dir,
        "off.json",
        r#"{"apps": [{"script": "app.py", "watchdog_sec": 0, "listen": []}]}"#,
    );
    let app = &resolve(&dir, "off.json", &StartOptions::default())
        .unwrap()
        .apps[0];
    assert_eq!(app.ready.watchdog_ms, None, "0 = no watchdog, as systemd's");
    assert!(app.listen.is_empty());
}

pub(super) fn flags(serving: ServingDraft) -> StartOptions {
    StartOptions {
        serving,
        ..StartOptions::default()
    }
}

#[test]
fn flags_win_over_the_file_and_resolve_against_the_app_cwd() {
    let (_keep, dir) = temp_dir();
    write(&dir, "app/a.sh", "");
    write(
        &dir,
        "e.json",
        r#"{"apps": [{"script": "a.sh", "cwd": "app", "listen": 8000, "exec_mode": "fork",
            "ready_http": "http://localhost:8000/", "listen_timeout": 9000,
            "instance_var": "FILE_VAR"}]}"#,
    );
    let options = flags(ServingDraft {
        listen: vec![s("9000"), s("unix:../s.sock")],
        exec_mode: Some(ExecMode::Cluster),
        wait_ready: Some(true),
        listen_timeout_ms: Some(100),
        instance_var: Some(s("FLAG_VAR")),
        ..ServingDraft::default()
    });
    let app = &resolve(&dir, "e.json", &options).unwrap().apps[0];
    assert_eq!(
        app.listen,
        [s("9000"), format!("unix:{}", at(&dir, "app/../s.sock"))]
    );
    assert_eq!(app.exec_mode, ExecMode::Cluster);
    assert_eq!(
        (
            app.ready.wait_ready,
            app.ready.http.as_deref(),
            app.ready.timeout_ms
        ),
        (true, Some("http://localhost:8000/"), 100),
        "what no flag says stays as the file says"
    );
    assert_eq!(app.instance_var.as_deref(), Some("FLAG_VAR"));
    let options = flags(ServingDraft {
        listen: vec![s("unix:sock")],
        ..ServingDraft::default()
    });
    let options = StartOptions {
        cwd: Some("app".into()),
        ..options
    };
    let app = &resolve(&dir, "a.sh", &options).unwrap().apps[0];
    assert_eq!(app.listen, [format!("unix:{}", at(&dir, "app/sock"))]);
}

#[test]
fn instances_on_the_command_line_make_a_node_script_a_cluster() {
    use ExecMode::{Cluster, Fork};
    let (_keep, dir) = temp_dir();
    write(&dir, "server.js", "");
    write(&dir, "app.py", "");
    write(&dir, "server.bin", "");
    write(
        &dir,
        "e.json",
        r#"{"apps": [{"script": "server.js"}, {"script": "server.js", "name": "c", "exec_mode": "cluster"}]}"#,
    );
    let mode = |target: &str, options: &StartOptions| {
        resolve(&dir, target, options)
            .unwrap()
            .apps
            .iter()
            .map(|app| app.exec_mode)
            .collect::<Vec<_>>()
    };
    let instances = |n| StartOptions {
        instances: Some(n),
        ..StartOptions::default()
    };
    assert_eq!(mode("server.js", &instances(4)), [Cluster]);
    assert_eq!(mode("server.js", &instances(1)), [Cluster], "-i 1 too");
    assert_eq!(mode("server.js", &StartOptions::default()), [Fork]);
    assert_eq!(mode("app.py", &instances(4)), [Fork], "not a Node script");
    let forked = StartOptions {
        serving: ServingDraft {
            exec_mode: Some(Fork),
            ..ServingDraft::default()
        },
        ..instances(4)
    };
    assert_eq!(mode("server.js", &forked), [Fork], "--exec-mode fork wins");
    let by_interpreter = StartOptions {
        interpreter: Some(s("node --enable-source-maps")),
        ..instances(2)
    };
    assert_eq!(mode("server.bin", &by_interpreter), [Cluster]);
    let not_node = StartOptions {
        interpreter: Some(s("python3")),
        ..instances(2)
    };
    assert_eq!(mode("server.js", &not_node), [Fork]);
    assert_eq!(
        mode("e.json", &instances(4)),
        [Fork, Cluster],
        "a file's apps: only their exec_mode key"
    );
    let clustered = flags(ServingDraft {
        exec_mode: Some(Cluster),
        ..ServingDraft::default()
    });
    assert_eq!(mode("e.json", &clustered), [Cluster, Cluster]);
}

/// The error for an app `w` of `e.json` with the extra keys `extra`.
pub(super) fn key_error(extra: &str) -> String {
    let (_keep, dir) = temp_dir();
    write(&dir, "a.sh", "");
    let file = format!(r#"{{"apps": [{{"name": "w", "script": "a.sh", {extra}}}]}}"#);
    write(&dir, "e.json", &file);
    error_text(resolve(&dir, "e.json", &StartOptions::default()))
}

#[test]
fn bad_listen_values_name_the_key_and_the_value() {
    assert_eq!(
        key_error(r#""listen": true"#),
        r#"e.json: app "w": key "listen" must be a port, an address such as "127.0.0.1:8000" or "unix:app.sock", or an array of them, got boolean true"#
    );
    assert_eq!(
        key_error(r#""listen": [8000, -1]"#),
        r#"e.json: app "w": key "listen": item 1 must be a port or an address such as "127.0.0.1:8000" or "unix:app.sock", got number -1"#
    );
    assert_eq!(
        key_error(r#""listen": "abc""#),
        r#"e.json: app "w": invalid listen address "abc": no port (expected PORT, HOST:PORT, [IPV6]:PORT or unix:/ABSOLUTE/PATH)"#
    );
    assert!(key_error(r#""listen": 0"#).contains(r#"invalid listen address "0": port 0"#));
    assert!(key_error(r#""listen": 70000"#).contains("a number from 1 to 65535"));
    assert!(
        key_error(r#""listen": "example.com:80""#)
            .contains(r#"invalid listen address "example.com:80": the host must be an IP"#)
    );
    assert_eq!(
        key_error(r#""listen": [8000, "*:8000"]"#),
        r#"e.json: app "w": invalid listen: *:8000 is given twice"#
    );
    assert_eq!(
        key_error(r#""listen": "unix:""#),
        r#"e.json: app "w": invalid listen address "unix:": no socket path after `unix:`"#
    );
    let long = "s".repeat(120);
    assert!(key_error(&format!(r#""listen": "unix:{long}""#)).contains("at most 107 bytes"));
    let many: Vec<String> = (1..=17).map(|port| port.to_string()).collect();
    assert!(
        key_error(&format!(r#""listen": [{}]"#, many.join(", ")))
            .contains("invalid listen: 17 addresses, at most 16")
    );
}

/// Each (extra keys, the error after `e.json: app "w": `).
pub(super) fn assert_key_errors(cases: &[(&str, &str)]) {
    for (extra, expected) in cases {
        assert_eq!(
            key_error(extra),
            format!(r#"e.json: app "w": {expected}"#),
            "{extra}"
        );
    }
}

#[test]
fn bad_exec_mode_and_readiness_values_name_the_key() {
    assert_key_errors(&[
        (
            r#""exec_mode": "threads""#,
            r#"key "exec_mode" must be "fork" or "cluster", got string "threads""#,
        ),
        (
            r#""exec_mode": 1"#,
            r#"key "exec_mode" must be a string, got number 1"#,
        ),
        (
            r#""wait_ready": "yes""#,
            r#"key "wait_ready" must be true or false, got string "yes""#,
        ),
        (
            r#""listen_timeout": "soon""#,
            r#"key "listen_timeout" must be milliseconds or a duration such as "1s", got string "soon""#,
        ),
        (
            r#""listen_timeout": -3"#,
            r#"key "listen_timeout" must be a whole number of milliseconds, 0 or more, got number -3"#,
        ),
        (
            r#""listen_timeout": 0"#,
            "invalid listen_timeout 0 ms: expected 1 ms to one day",
        ),
        (
            r#""listen_timeout": "2 days""#,
            "invalid listen_timeout 172800000 ms: expected 1 ms to one day",
        ),
        (
            r#""ready_strict": 1"#,
            r#"key "ready_strict" must be true or false, got number 1"#,
        ),
        (
            r#""ready_strict": true"#,
            "ready_strict needs something to wait for: wait_ready or a ready_* probe",
        ),
        (
            r#""ready_http": "https://x/""#,
            r#"invalid ready_http "https://x/": only http:// URLs are probed"#,
        ),
        (
            r#""ready_http": "http://x:0/""#,
            r#"invalid ready_http "http://x:0/": the port must be a number from 1 to 65535"#,
        ),
        (
            r#""ready_http": """#,
            r#"key "ready_http" must be a non-empty string, got string """#,
        ),
        (
            r#""ready_tcp": "x""#,
            r#"invalid ready_tcp "x": expected PORT or HOST:PORT"#,
        ),
        (
            r#""ready_tcp": 70000"#,
            r#"invalid ready_tcp "70000": expected PORT or HOST:PORT"#,
        ),
        (
            r#""ready_tcp": -5"#,
            r#"key "ready_tcp" must be a port, or "HOST:PORT", got number -5"#,
        ),
        (
            r#""ready_cmd": " ""#,
            r#"key "ready_cmd" must be a non-empty string, got string " ""#,
        ),
        (
            r#""ready_cmd": ["curl"]"#,
            r#"key "ready_cmd" must be a string, got an array"#,
        ),
        (
            r#""ready_log": """#,
            r#"key "ready_log" must be a non-empty string, got string """#,
        ),
    ]);
    let error = key_error(r#""ready_log": "(unclosed""#);
    assert!(
        error.starts_with(r#"e.json: app "w": invalid ready_log "(unclosed": regex parse error"#),
        "{error}"
    );
}

#[test]
fn bad_watchdog_and_instance_variables_name_the_key() {
    assert_key_errors(&[
        (
            r#""watchdog_sec": "soon""#,
            r#"key "watchdog_sec" must be seconds or a duration such as "500ms", got string "soon""#,
        ),
        (
            r#""watchdog_sec": -1"#,
            r#"key "watchdog_sec" must be a number of seconds, 0 or more, got number -1"#,
        ),
        (
            r#""watchdog_sec": true"#,
            r#"key "watchdog_sec" must be a number of seconds or a duration such as "500ms", got boolean true"#,
        ),
        (
            r#""watchdog_sec": 0.05"#,
            "invalid watchdog_sec 50 ms: expected 100 ms to one day",
        ),
        (
            r#""instance_var": 3"#,
            r#"key "instance_var" must be a string, got number 3"#,
        ),
        (
            r#""instance_var": "A=B""#,
            r#"instance_var: invalid env: variable name "A=B" must be non-empty, without `=` or NUL"#,
        ),
        (
            r#""increment_var": """#,
            r#"key "increment_var" must be a non-empty string, got string """#,
        ),
        (
            r#""increment_var": "PORT""#,
            r#"invalid increment_var "PORT": the environment does not set it (e.g. env: {PORT: 3000})"#,
        ),
        (
            r#""increment_var": "PORT", "env": {"PORT": "eighty"}"#,
            r#"invalid increment_var "PORT": its value must be a number"#,
        ),
    ]);
}

#[test]
fn bad_flag_values_are_refused_with_the_same_rules() {
    let (_keep, dir) = temp_dir();
    write(&dir, "a.sh", "");
    let error = |serving: ServingDraft| error_text(resolve(&dir, "a.sh", &flags(serving)));
    assert_eq!(
        error(ServingDraft {
            listen: vec![s("8000"), s("localhost")],
            ..ServingDraft::default()
        }),
        r#"invalid listen address "localhost": no port (expected PORT, HOST:PORT, [IPV6]:PORT or unix:/ABSOLUTE/PATH)"#
    );
    assert_eq!(
        error(ServingDraft {
            ready_strict: Some(true),
            watchdog_ms: Some(1000),
            ..ServingDraft::default()
        }),
        "ready_strict needs something to wait for: wait_ready or a ready_* probe"
    );
    assert_eq!(
        error(ServingDraft {
            ready_tcp: Some(s("db:")),
            ..ServingDraft::default()
        }),
        r#"invalid ready_tcp "db:": expected PORT or HOST:PORT"#
    );
    let ok = resolve(
        &dir,
        "a.sh",
        &StartOptions {
            env_vars: vec![(s("PORT"), s("3000"))],
            ..flags(ServingDraft {
                increment_var: Some(s("PORT")),
                ready_strict: Some(true),
                ready_cmd: Some(s("true")),
                ..ServingDraft::default()
            })
        },
    )
    .unwrap();
    assert_eq!(ok.apps[0].increment_var.as_deref(), Some("PORT"));
}

#[test]
fn a_pm2_config_js_in_cluster_mode() {
    let (_keep, dir) = temp_dir();
    write(&dir, "server.js", "");
    write(
        &dir,
        "ecosystem.config.js",
        "module.exports = { apps: [{ name: 'web', script: 'server.js', instances: 4,\n\
         exec_mode: 'cluster', wait_ready: true, listen_timeout: 8000, kill_timeout: 3000,\n\
         increment_var: 'PORT', env: { PORT: 3000 } }] };\n",
    );
    let result = resolve(&dir, "ecosystem.config.js", &StartOptions::default());
    let path = super::cli_env().get("PATH").cloned();
    if crate::ecosystem::program::which("node", path.as_deref()).is_none() {
        assert!(error_text(result).contains("node is needed"));
        return;
    }
    let app = &result.unwrap().apps[0];
    assert_eq!((app.instances, app.exec_mode), (4, ExecMode::Cluster));
    assert_eq!((app.ready.wait_ready, app.ready.timeout_ms), (true, 8000));
    assert_eq!(app.increment_var.as_deref(), Some("PORT"));
}
