//! God validates every request itself (bad names, argv, signals, counts… → `bad_params`,
//! nothing started or stored), tables never write control bytes of user data, and env
//! files feed the app's environment with the documented precedence.

use crate::harness::{Zpm, poll, zpm_processes};
use serde_json::{Value, json};
use std::time::Duration;
use zpm_proto::method::app;
use zpm_proto::{AppSpec, PROTOCOL_VERSION};
use zpm_rpc::{CallError, Client, ClientOptions, ErrorCode, Method as _, RpcError};

/// Calls God directly, as a third party would: params are sent exactly as given.
pub(crate) fn rpc(zpm: &Zpm, method: &str, params: &Value) -> Result<Value, RpcError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let options = ClientOptions {
            version: PROTOCOL_VERSION,
            ..ClientOptions::default()
        };
        let endpoint = format!("ipc://{}", zpm.path("rpc.sock").display());
        let client = Client::with_options(&endpoint, options);
        match client
            .call::<_, Value>(method, params, Duration::from_secs(60))
            .await
        {
            Ok(result) => Ok(result),
            Err(CallError::Remote(e)) => Err(e),
            Err(e) => panic!("{method}: {e}"),
        }
    })
}

/// Asserts God refused `params` with `bad_params` and a message containing `expected`.
fn refused(zpm: &Zpm, method: &str, params: &Value, expected: &str) {
    let error = rpc(zpm, method, params).expect_err("God should refuse");
    assert_eq!(error.code, ErrorCode::BadParams, "{error}");
    assert!(
        error.message.contains(expected),
        "{method}: {:?} does not contain {expected:?}",
        error.message
    );
}

/// A valid spec, as the wire carries it, of an app marked with the test's marker (its
/// shell stays, with the marker as `$0`).
pub(crate) fn good_spec(zpm: &Zpm, name: &str) -> Value {
    let argv = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        "sleep 1000; exit 0".to_owned(),
        zpm.marker.clone(),
    ];
    let spec = AppSpec::new(name, argv, zpm.home().display().to_string());
    serde_json::to_value(spec).unwrap()
}

fn with(mut spec: Value, key: &str, value: Value) -> Value {
    spec[key] = value;
    spec
}

/// (field, bad value, what God's message says), for `app.start`.
fn bad_fields() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "name",
            json!("a\nb"),
            r#"app at index 1: invalid app name "a\nb": it cannot contain control characters"#,
        ),
        (
            "name",
            json!("\u{1b}[31mred"),
            "it cannot contain control characters",
        ),
        (
            "name",
            json!("../.."),
            "invalid app name \"../..\": it cannot contain `/`",
        ),
        (
            "name",
            json!(""),
            "invalid app name \"\": it cannot be empty",
        ),
        (
            "name",
            json!("all"),
            "invalid app name \"all\": `all` means every app",
        ),
        (
            "name",
            json!("0"),
            "invalid app name \"0\": it cannot be only digits",
        ),
        ("name", json!("n".repeat(65)), "it is longer than 64 bytes"),
        (
            "namespace",
            json!("a/b"),
            "app \"good\": invalid namespace \"a/b\"",
        ),
        (
            "argv",
            json!([]),
            "app \"good\": invalid argv: it is empty (no program)",
        ),
        ("argv", json!([""]), "the program (argv[0]) is empty"),
        (
            "argv",
            json!(["/bin/echo", "a\0b"]),
            "argv[1] contains a NUL byte",
        ),
        (
            "cwd",
            json!("relative"),
            "invalid cwd \"relative\": it must be an absolute path",
        ),
        (
            "env",
            json!({"K": "a\0b"}),
            "the value of \"K\" contains a NUL byte",
        ),
        ("env", json!({"A=B": "x"}), "variable name \"A=B\""),
        (
            "kill_signal",
            json!("SIGFOO"),
            "app \"good\": unknown kill_signal \"SIGFOO\"",
        ),
        (
            "instances",
            json!(100_000),
            "app \"good\": invalid instances 100000: expected 1 to 1024",
        ),
        ("instances", json!(0), "invalid instances 0"),
        ("stop_exit_codes", json!([999]), "999 is not an exit status"),
        (
            "kill_timeout_ms",
            json!(u64::MAX),
            "invalid kill_timeout_ms",
        ),
    ]
}

/// (field, bad value, what God's message says) for how an app serves (issue 7).
/// `depends_on`, `watch` and `env_origin` rows, as `bad_fields`.
fn bad_trigger_fields() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "depends_on",
            json!([{"name": "a\nb", "condition": "ready"}]),
            "depends_on: invalid app name",
        ),
        (
            "depends_on",
            json!([{"name": "db", "condition": "soon"}]),
            "unknown variant `soon`",
        ),
        (
            "depends_timeout_ms",
            json!(0),
            "invalid depends_timeout 0 ms",
        ),
        (
            "watch",
            json!({"enabled": true, "paths": ["rel"]}),
            "invalid watch path",
        ),
        (
            "env_origin",
            json!({"overrides": ["NOPE"]}),
            r#"override "NOPE" is not in env"#,
        ),
        (
            "watch",
            json!({"enabled": true, "paths": ["src"]}),
            r#"invalid watch path "src""#,
        ),
        (
            "watch",
            json!({"enabled": true, "ignore": [""]}),
            "invalid ignore_watch",
        ),
        (
            "watch",
            json!({"enabled": true, "delay_ms": 3_600_001}),
            "invalid watch_delay",
        ),
        (
            "watch",
            json!({"enabled": true, "paths": vec!["/a"; 65]}),
            "at most 64 paths",
        ),
    ]
}

fn bad_serving_fields() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "listen",
            json!(["abc"]),
            r#"invalid listen address "abc": no port"#,
        ),
        (
            "listen",
            json!(["unix:run/a.sock"]),
            "a unix socket path must be absolute",
        ),
        ("listen", json!(["0"]), "port 0"),
        ("listen", json!(["8000", "*:8000"]), "*:8000 is given twice"),
        ("listen", json!(vec!["1"; 17]), "17 addresses, at most 16"),
        ("exec_mode", json!("threads"), "unknown variant"),
        (
            "ready",
            json!({"strict": true}),
            "ready_strict needs something to wait for",
        ),
        ("ready", json!({"log": "("}), "invalid ready_log \"(\""),
        (
            "ready",
            json!({"log": ""}),
            "an empty pattern matches every line",
        ),
        ("ready", json!({"http": "https://x/"}), "only http:// URLs"),
        ("ready", json!({"tcp": "x:y"}), "invalid ready_tcp"),
        ("ready", json!({"cmd": " "}), "invalid ready_cmd"),
        (
            "ready",
            json!({"watchdog_ms": 1}),
            "invalid watchdog_sec 1 ms",
        ),
        (
            "ready",
            json!({"timeout_ms": 0}),
            "invalid listen_timeout 0 ms",
        ),
        (
            "increment_var",
            json!("PORT"),
            r#"invalid increment_var "PORT": the environment does not set it"#,
        ),
        ("instance_var", json!("A=B"), "instance_var"),
        ("health", json!({"http": "ftp://x/"}), "invalid health_http"),
        ("health", json!({"tcp": "x:y"}), "invalid health_tcp"),
        ("health", json!({"cmd": ""}), "invalid health_cmd"),
        (
            "health",
            json!({"tcp": "80", "interval_ms": 1}),
            "invalid health_interval 1 ms",
        ),
        (
            "health",
            json!({"tcp": "80", "retries": 0}),
            "invalid health_retries 0",
        ),
        ("cron_restart", json!("* *"), "2 fields, expected 5"),
        (
            "cron_restart",
            json!("61 * * * *"),
            r#"invalid cron_restart "61 * * * *""#,
        ),
    ]
}

#[test]
fn god_refuses_bad_app_start_and_starts_nothing() {
    let zpm = Zpm::new();
    zpm.ok(&["ping"]);
    let spec = good_spec(&zpm, "good");
    for (key, value, expected) in bad_fields()
        .into_iter()
        .chain(bad_serving_fields())
        .chain(bad_trigger_fields())
    {
        let bad = with(spec.clone(), key, value);
        refused(
            &zpm,
            app::Start::NAME,
            &json!({ "apps": [spec.clone(), bad] }),
            expected,
        );
    }
    let many: Vec<Value> = (0..300)
        .map(|n| good_spec(&zpm, &format!("app{n}")))
        .collect();
    refused(
        &zpm,
        app::Start::NAME,
        &json!({ "apps": many }),
        "300 apps in one request, at most 256",
    );
    refused(
        &zpm,
        app::Start::NAME,
        &json!({ "apps": [] }),
        "no apps to start",
    );
    assert!(zpm.ls().is_empty(), "{:#?}", zpm.ls());
    // Commands to the spawner are ordered: had anything above been spawned, it would run
    // by the time this good app does.
    let started = rpc(&zpm, app::Start::NAME, &json!({ "apps": [spec] })).unwrap();
    assert_eq!(started.as_array().unwrap().len(), 1);
    zpm.wait_marked(1);
    let rows = zpm.ls();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["name"], "good");
}

#[test]
fn signal_and_scale_are_checked_by_the_cli_and_by_god() {
    let zpm = Zpm::new();
    let error = zpm.fails(&["signal", "SIGFOO", "app"]);
    assert!(
        error.contains(r#"unknown signal "SIGFOO": expected a signal name such as SIGINT or TERM"#),
        "{error}"
    );
    assert!(
        zpm_processes(zpm.home(), &["daemon"]).is_empty(),
        "a refused signal must not even reach (or launch) the daemon"
    );
    let error = zpm.fails(&["scale", "app", "100000"]);
    assert!(
        error.contains(r#"app "app": invalid instances 100000: expected 1 to 1024"#),
        "{error}"
    );
    zpm.ok(&["ping"]);
    rpc(
        &zpm,
        app::Start::NAME,
        &json!({ "apps": [good_spec(&zpm, "sig")] }),
    )
    .unwrap();
    let pid = zpm.wait_marked(1);
    refused(
        &zpm,
        app::Signal::NAME,
        &json!({"target": "sig", "signal": "SIGFOO"}),
        r#"unknown signal "SIGFOO""#,
    );
    refused(
        &zpm,
        app::Scale::NAME,
        &json!({"name": "sig", "instances": 0}),
        r#"app "sig": invalid instances 0: expected 1 to 1024"#,
    );
    refused(
        &zpm,
        app::Scale::NAME,
        &json!({"name": "sig", "instances": 100_000}),
        "invalid instances 100000",
    );
    let rows = zpm.ls();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["restarts"], 0);
    assert_eq!(zpm.marked(), pid);
}

/// `--update-env` and `--with-deps` as a hostile client sends them: God checks the new
/// spec (nothing restarted on a bad one) and ignores an environment for an app it was not
/// asked to restart.
#[test]
fn update_env_is_checked_by_god() {
    let zpm = Zpm::new();
    zpm.ok(&["ping"]);
    rpc(
        &zpm,
        app::Start::NAME,
        &json!({ "apps": [good_spec(&zpm, "u")] }),
    )
    .unwrap();
    let pid = zpm.wait_marked(1);
    let update =
        |env: Value| json!({"name": "u", "namespace": "default", "env": env, "env_explicit": []});
    refused(
        &zpm,
        app::Restart::NAME,
        &json!({"target": "u", "update_env": [update(json!({"A=B": "x"}))]}),
        "app \"u\": invalid env",
    );
    let many: Vec<Value> = (0..300).map(|_| update(json!({}))).collect();
    refused(
        &zpm,
        app::Restart::NAME,
        &json!({"target": "u", "update_env": many}),
        "update_env: 300 apps, at most 256",
    );
    assert_eq!(zpm.marked(), pid, "nothing was restarted");
    let other =
        json!({"name": "other", "namespace": "default", "env": {"X": "1"}, "env_explicit": []});
    let rows = rpc(
        &zpm,
        app::Restart::NAME,
        &json!({"target": "u", "with_deps": true, "update_env": [other]}),
    )
    .unwrap();
    assert_eq!(rows[0]["status"], "online", "{rows}");
    assert_ne!(zpm.wait_marked(1), pid, "restarted with its own spec");
}

#[test]
fn reload_msg_and_send_are_checked_by_god() {
    let zpm = Zpm::new();
    zpm.ok(&["ping"]);
    rpc(
        &zpm,
        app::Start::NAME,
        &json!({ "apps": [good_spec(&zpm, "r")] }),
    )
    .unwrap();
    let pid = zpm.wait_marked(1);
    let unknown = rpc(&zpm, app::Reload::NAME, &json!({"target": "nope"})).unwrap_err();
    assert_eq!(unknown.code, ErrorCode::NotFound, "{unknown}");
    let bad = with(good_spec(&zpm, "r"), "listen", json!(["abc"]));
    refused(
        &zpm,
        app::Reload::NAME,
        &json!({"apps": [bad]}),
        "invalid listen address",
    );
    refused(
        &zpm,
        app::Msg::NAME,
        &json!({"target": "r", "json": "{bad"}),
        "the message is not JSON",
    );
    let huge = format!("\"{}\"", "x".repeat(70_000));
    refused(
        &zpm,
        app::Msg::NAME,
        &json!({"target": "r", "json": huge}),
        "at most 65536",
    );
    refused(
        &zpm,
        app::Send::NAME,
        &json!({"target": "r", "line": "y".repeat(70_000)}),
        "at most 65536",
    );
    assert_eq!(zpm.marked(), pid, "nothing reached the app");
    // An absurd `parallel` is bounded, and the reload (a restart: the app binds nothing
    // of zpm's) still happens.
    let rows = rpc(
        &zpm,
        app::Reload::NAME,
        &json!({"target": "r", "parallel": u32::MAX}),
    )
    .unwrap();
    assert_eq!(rows[0]["restarts"], 1, "{rows}");
    assert_ne!(zpm.wait_marked(1), pid);
}

#[test]
fn resurrect_refuses_a_dump_with_a_bad_app() {
    let zpm = Zpm::new();
    let bad = with(good_spec(&zpm, "b"), "name", json!("evil\u{1b}]0;x\u{7}"));
    let dump = json!({"version": 1, "apps": [good_spec(&zpm, "fine"), bad]});
    std::fs::write(zpm.path("dump.json"), dump.to_string()).unwrap();
    let error = zpm.fails(&["resurrect"]);
    let expected = format!(
        "{}: app at index 1: invalid app name \"evil\\u{{1b}}]0;x\\u{{7}}\": it cannot contain control characters",
        zpm.path("dump.json").display()
    );
    assert!(error.contains(&expected), "{error}\nexpected {expected}");
    assert!(zpm.ls().is_empty());
    assert!(zpm.marked().is_empty());
}

#[test]
fn ls_piped_writes_no_control_bytes_of_an_old_state_file() {
    let zpm = Zpm::new();
    let mut spec = good_spec(&zpm, "x");
    spec["name"] = json!("old\u{1b}[2J\nname");
    let state = json!({
        "version": 1,
        "next_id": 1,
        "apps": [{"id": 0, "instance": 0, "desired": "stopped", "restarts": 0, "spec": spec}],
    });
    std::fs::write(zpm.path("state.json"), state.to_string()).unwrap();
    let rows = zpm.ls();
    assert_eq!(
        rows[0]["name"], "old\u{1b}[2J\nname",
        "the state was loaded"
    );
    for verb in [&["ls"][..], &["describe", "0"]] {
        let out = zpm
            .cmd()
            .args(verb)
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        assert!(out.status.success(), "{verb:?}");
        assert!(!out.stdout.contains(&0x1b), "{verb:?} wrote an ESC byte");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(r"old\x1b[2J\nname"), "{verb:?}:\n{text}");
    }
}

/// An app that writes the variables under test to `rec-<name>.txt`.
fn env_recorder(zpm: &Zpm) -> String {
    let script = zpm.script(
        "envrec.sh",
        "#!/bin/sh\necho \"$L0 $L1 $L2 $L3 $L4 $L5\" > \"rec-$ZPM_NAME.tmp\"\nmv \"rec-$ZPM_NAME.tmp\" \"rec-$ZPM_NAME.txt\"\nexec sleep 1000\n",
    );
    script.display().to_string()
}

/// Each `Ln` is set by the CLI's env and every level up to level n; `L5` only by the CLI's
/// env and `env_file`. Runs in the ecosystem file's directory (`conf/`).
#[test]
fn env_file_precedence_end_to_end() {
    let zpm = Zpm::new();
    let script = env_recorder(&zpm);
    std::fs::create_dir(zpm.path("conf")).unwrap();
    std::fs::write(
        zpm.path("conf/.env"),
        "L1=file\nL2=file\nL3=file\nL4=file\nL5=file\nAPI_TOKEN=hunter2\n",
    )
    .unwrap();
    std::fs::write(zpm.path("cli.env"), "L1=clifile\n").unwrap();
    let eco = json!({"apps": [{
        "name": "prec",
        "script": script,
        "args": [zpm.marker.clone()],
        "env_file": ".env",
        "env": {"L2": "env", "L3": "env", "L4": "env"},
        "env_production": {"L3": "prod", "L4": "prod"},
    }]});
    std::fs::write(zpm.path("conf/eco.json"), eco.to_string()).unwrap();
    let mut cmd = zpm.cmd();
    for level in ["L0", "L1", "L2", "L3", "L4", "L5"] {
        cmd.env(level, "cli");
    }
    let args = [
        "start",
        "conf/eco.json",
        "--env",
        "production",
        "--env-file",
        "cli.env",
        "--env-var",
        "L4=var",
    ];
    let out = cmd.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recorded = poll("prec recorded its env", || {
        std::fs::read_to_string(zpm.path("conf/rec-prec.txt")).ok()
    });
    assert_eq!(recorded.trim(), "cli clifile env prod var file");
    let described = zpm.json(&["describe", "prec"]);
    let env = &described[0]["spec"]["env"];
    assert_eq!(env["L5"], "file", "env file variables are explicit: {env}");
    assert_eq!(env["API_TOKEN"], "****", "secret-looking values are masked");
    assert!(env.get("L0").is_none(), "inherited variables are not shown");
}

#[test]
fn a_missing_env_file_starts_nothing() {
    let zpm = Zpm::new();
    let script = env_recorder(&zpm);
    let error = zpm.fails(&["start", &script, "--env-file", "absent.env"]);
    assert!(
        error.contains(&format!(
            "env file {}: cannot read",
            zpm.path("absent.env").display()
        )),
        "{error}"
    );
    assert!(zpm_processes(zpm.home(), &["daemon"]).is_empty());
}

#[test]
fn app_watch_is_checked_by_god() {
    let zpm = Zpm::new();
    zpm.start_idle("idle");
    let missing = rpc(&zpm, "app.watch", &json!({"target": "idle"})).expect_err("no enabled");
    assert_eq!(missing.code, ErrorCode::BadParams, "{missing}");
    let wrong = rpc(
        &zpm,
        "app.watch",
        &json!({"target": "idle", "enabled": "yes"}),
    );
    assert_eq!(wrong.expect_err("a string").code, ErrorCode::BadParams);
    let unknown = rpc(
        &zpm,
        "app.watch",
        &json!({"target": "nosuch", "enabled": true}),
    )
    .expect_err("no such app");
    assert_eq!(unknown.code, ErrorCode::NotFound, "{unknown}");
    // A spawner-only notification from the CLI's connection, about an app that watches
    // and would be reloaded on a real one: ignored. Watched for a bounded quiet time.
    rpc(
        &zpm,
        "app.watch",
        &json!({"target": "idle", "enabled": true}),
    )
    .unwrap();
    let pid = zpm.ls()[0]["pid"].clone();
    for id in [0, 1, u32::MAX] {
        let _ = rpc(&zpm, "proc.changed", &json!({"id": id, "path": "/x"}));
    }
    let quiet = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    while std::time::Instant::now() < quiet {
        let row = zpm.ls()[0].clone();
        assert_eq!(
            (row["restarts"].clone(), row["pid"].clone()),
            (json!(0), pid.clone())
        );
    }
}
