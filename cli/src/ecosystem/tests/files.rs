//! Ecosystem files: JSON, YAML and TOML, env blocks, command-line overrides, messages.

use super::{at, cpus, error_text, resolve, s, temp_dir, write};
use crate::ecosystem::StartOptions;

const JSON: &str = r#"{
  "apps": [
    {
      "name": "api",
      "script": "server.sh",
      "args": "--port 80 'two words'",
      "cwd": "sub",
      "env": { "PORT": 8080, "DEBUG": true, "MODE": "dev" },
      "env_production": { "MODE": "prod", "EXTRA": "1" },
      "instances": 2,
      "autorestart": false,
      "max_restarts": 3,
      "min_uptime": "2s",
      "restart_delay": 250,
      "exp_backoff_restart_delay": 100,
      "stop_exit_codes": [0, 3],
      "kill_timeout": "5s",
      "kill_signal": "INT",
      "namespace": "web",
      "exec_mode": "fork"
    },
    { "script": "worker.py", "interpreter": "python3 -u", "interpreter_args": ["-X", "dev"], "stop_exit_codes": 2 }
  ]
}"#;

#[test]
fn json_file_apps() {
    let (_keep, dir) = temp_dir();
    write(&dir, "sub/server.sh", "echo hi\n");
    write(&dir, "worker.py", "print(1)\n");
    write(&dir, "ecosystem.json", JSON);
    let resolved = resolve(&dir, "ecosystem.json", &StartOptions::default()).unwrap();
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
    let [api, worker] = &resolved.apps[..] else {
        panic!("two apps expected")
    };
    assert_eq!(api.name, "api");
    assert_eq!(
        api.argv,
        [
            s("bash"),
            at(&dir, "sub/server.sh"),
            s("--port"),
            s("80"),
            s("two words")
        ]
    );
    assert_eq!(api.cwd, at(&dir, "sub"));
    assert_eq!(api.env["PORT"], "8080");
    assert_eq!(api.env["DEBUG"], "true");
    assert_eq!(api.env["MODE"], "dev");
    assert_eq!(api.env["INHERITED"], "from-cli");
    assert!(!api.env.contains_key("EXTRA"));
    assert_eq!(api.env_explicit, ["DEBUG", "MODE", "PORT"]);
    assert_eq!(
        (api.instances, api.autorestart, api.max_restarts),
        (2, false, 3)
    );
    assert_eq!(
        (
            api.min_uptime_ms,
            api.restart_delay_ms,
            api.exp_backoff_restart_delay_ms
        ),
        (2000, 250, 100)
    );
    assert_eq!(
        (
            api.kill_timeout_ms,
            api.kill_signal.as_str(),
            api.namespace.as_str()
        ),
        (5000, "SIGINT", "web")
    );
    assert_eq!(api.stop_exit_codes, [0, 3]);
    assert_eq!(worker.name, "worker");
    assert_eq!(
        worker.argv,
        [
            s("python3"),
            s("-u"),
            s("-X"),
            s("dev"),
            at(&dir, "worker.py")
        ]
    );
    assert_eq!(worker.cwd, dir.to_str().unwrap());
    assert_eq!(worker.stop_exit_codes, [2]);
    assert_eq!(
        (
            worker.instances,
            worker.kill_signal.as_str(),
            worker.namespace.as_str()
        ),
        (1, "SIGTERM", "default")
    );
    assert!(worker.env_explicit.is_empty());
}

#[test]
fn env_block_selected_by_env_name() {
    let (_keep, dir) = temp_dir();
    write(&dir, "sub/server.sh", "");
    write(&dir, "worker.py", "");
    write(&dir, "ecosystem.json", JSON);
    let options = StartOptions {
        env_name: Some(s("production")),
        ..StartOptions::default()
    };
    let resolved = resolve(&dir, "ecosystem.json", &options).unwrap();
    let api = &resolved.apps[0];
    assert_eq!(
        (
            api.env["MODE"].as_str(),
            api.env["EXTRA"].as_str(),
            api.env["PORT"].as_str()
        ),
        ("prod", "1", "8080")
    );
    assert_eq!(api.env_explicit, ["DEBUG", "EXTRA", "MODE", "PORT"]);
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);

    let options = StartOptions {
        env_name: Some(s("staging")),
        ..StartOptions::default()
    };
    let resolved = resolve(&dir, "ecosystem.json", &options).unwrap();
    assert_eq!(
        resolved.warnings,
        [r#"--env staging: no app of ecosystem.json has an "env_staging" block"#]
    );
}

#[test]
fn command_line_overrides_file_values() {
    let (_keep, dir) = temp_dir();
    write(&dir, "app.sh", "");
    write(&dir, "other/x", "");
    let file = r#"{"apps": [{"name": "one", "script": "app.sh", "args": ["a"], "instances": 3, "env": {"K": "file"}}]}"#;
    write(&dir, "apps.json", file);
    let options = StartOptions {
        name: Some(s("renamed")),
        instances: Some(5),
        cwd: Some("other".into()),
        namespace: Some(s("ns")),
        no_autorestart: true,
        max_restarts: Some(7),
        min_uptime_ms: Some(10),
        restart_delay_ms: Some(20),
        kill_timeout_ms: Some(30),
        max_memory_restart: Some(50 << 20),
        hosts: vec![s("h2"), s("h3")],
        exp_backoff_restart_delay_ms: Some(40),
        interpreter: Some(s("sh")),
        env_vars: vec![(s("K"), s("cli")), (s("NEW"), s("x=y"))],
        env_name: None,
        env_files: Vec::new(),
        args: vec![s("b"), s("c")],
        logs: crate::ecosystem::LogDraft::default(),
        serving: crate::ecosystem::ServingDraft::default(),
        watch: crate::ecosystem::WatchDraft::default(),
    };
    let app = &resolve(&dir, "apps.json", &options).unwrap().apps[0];
    assert_eq!(app.name, "renamed");
    assert_eq!(app.hosts, [s("h2"), s("h3")]);
    assert_eq!(app.argv, [s("sh"), at(&dir, "app.sh"), s("b"), s("c")]);
    assert_eq!(app.cwd, at(&dir, "other"));
    assert_eq!(
        (
            app.instances,
            app.namespace.as_str(),
            app.autorestart,
            app.max_restarts
        ),
        (5, "ns", false, 7)
    );
    assert_eq!(
        (
            app.min_uptime_ms,
            app.restart_delay_ms,
            app.kill_timeout_ms,
            app.exp_backoff_restart_delay_ms
        ),
        (10, 20, 30, 40)
    );
    assert_eq!(
        (app.env["K"].as_str(), app.env["NEW"].as_str()),
        ("cli", "x=y")
    );
    assert_eq!(app.env_explicit, ["K", "NEW"]);
}

#[test]
fn name_option_ignored_with_several_apps() {
    let (_keep, dir) = temp_dir();
    write(&dir, "a.sh", "");
    write(
        &dir,
        "apps.json",
        r#"{"apps": [{"script": "a.sh"}, {"name": "b", "script": "a.sh", "instances": "max"}]}"#,
    );
    let options = StartOptions {
        name: Some(s("x")),
        namespace: Some(s("ns")),
        ..StartOptions::default()
    };
    let resolved = resolve(&dir, "apps.json", &options).unwrap();
    let names: Vec<_> = resolved
        .apps
        .iter()
        .map(|a| (a.name.as_str(), a.namespace.as_str()))
        .collect();
    assert_eq!(names, [("a", "ns"), ("b", "ns")]);
    assert_eq!(resolved.apps[1].instances, cpus());
    assert_eq!(resolved.warnings, ["--name ignored: apps.json has 2 apps"]);
}

#[test]
fn yaml_file() {
    let (_keep, dir) = temp_dir();
    write(&dir, "app.js", "");
    let yaml = "apps:\n  - name: web\n    script: app.js\n    args: [\"--x\", 1]\n    instances: -1\n    env:\n      PORT: 3000\n    min_uptime: 1500\n";
    write(&dir, "ecosystem.yml", yaml);
    let app = &resolve(&dir, "ecosystem.yml", &StartOptions::default())
        .unwrap()
        .apps[0];
    assert_eq!(app.argv, [s("node"), at(&dir, "app.js"), s("--x"), s("1")]);
    assert_eq!(
        (app.name.as_str(), app.instances, app.min_uptime_ms),
        ("web", cpus(), 1500)
    );
    assert_eq!(app.env["PORT"], "3000");
}

#[test]
fn toml_file() {
    let (_keep, dir) = temp_dir();
    write(&dir, "job.py", "");
    let toml = "[[apps]]\nname = \"job\"\nscript = \"job.py\"\ninstances = 2\nkill_signal = \"sigusr2\"\n\n[apps.env]\nA = \"1\"\nB = 2\n";
    write(&dir, "apps.toml", toml);
    let app = &resolve(&dir, "apps.toml", &StartOptions::default())
        .unwrap()
        .apps[0];
    assert_eq!(app.argv, [s("python3"), at(&dir, "job.py")]);
    assert_eq!(
        (app.name.as_str(), app.instances, app.kill_signal.as_str()),
        ("job", 2, "SIGUSR2")
    );
    assert_eq!((app.env["A"].as_str(), app.env["B"].as_str()), ("1", "2"));
}

#[test]
fn unknown_keys_are_warned_about() {
    let (_keep, dir) = temp_dir();
    write(&dir, "a.sh", "");
    let file = r#"{"apps": [{"name": "api", "script": "a.sh", "vizion": true, "exec_mode": "cluster"}], "extra": 1}"#;
    write(&dir, "ecosystem.json", file);
    let resolved = resolve(&dir, "ecosystem.json", &StartOptions::default()).unwrap();
    assert_eq!(
        resolved.warnings,
        [
            r#"ecosystem.json: unknown top-level key "extra" ignored"#,
            r#"ecosystem.json: app "api": unknown key "vizion" ignored"#,
        ]
    );
}

fn file_error(name: &str, content: &str) -> String {
    let (_keep, dir) = temp_dir();
    write(&dir, "a.sh", "");
    write(&dir, name, content);
    error_text(resolve(&dir, name, &StartOptions::default()))
}

#[test]
fn wrong_types_name_file_app_and_key() {
    let error = file_error(
        "ecosystem.json",
        r#"{"apps": [{"name": "api", "script": "a.sh", "instances": "two"}]}"#,
    );
    assert_eq!(
        error,
        r#"ecosystem.json: app "api": key "instances" must be a number, got string "two""#
    );
    let error = file_error(
        "ecosystem.json",
        r#"{"apps": [{"script": "a.sh", "autorestart": "no"}]}"#,
    );
    assert_eq!(
        error,
        r#"ecosystem.json: app at index 0: key "autorestart" must be true or false, got string "no""#
    );
    let error = file_error(
        "e.yaml",
        "apps:\n  - name: w\n    script: a.sh\n    env: {A: [1]}\n",
    );
    assert_eq!(
        error,
        r#"e.yaml: app "w": key "env": variable "A" must be a string, number or boolean, got an array"#
    );
    let error = file_error(
        "e.json",
        r#"{"apps": [{"name": "w", "script": "a.sh", "max_restarts": -2}]}"#,
    );
    assert_eq!(
        error,
        r#"e.json: app "w": key "max_restarts" must be a whole number, 0 or more, got number -2"#
    );
}

#[test]
fn structural_errors_name_the_file() {
    let error = file_error("e.json", r#"{"apps": [{"name": "api"}]}"#);
    assert_eq!(error, r#"e.json: app "api": missing required key "script""#);
    assert!(file_error("e.json", r#"{"services": []}"#).starts_with(r#"e.json: no "apps" array"#));
    assert_eq!(
        file_error("e.json", r#"{"apps": {}}"#),
        r#"e.json: "apps" must be an array of apps, got an object"#
    );
    assert_eq!(
        file_error("e.json", r#"{"apps": []}"#),
        r#"e.json: "apps" is empty"#
    );
    let error = file_error("e.json", "{\n  \"apps\": [\n    {,}\n  ]\n}");
    assert!(
        error.starts_with("e.json: invalid JSON: ") && error.contains("line 3 column"),
        "{error}"
    );
    let error = file_error("e.yaml", "apps:\n  - name: [\n");
    assert!(
        error.starts_with("e.yaml: invalid YAML: ") && error.contains("line"),
        "{error}"
    );
    let error = file_error("e.toml", "[[apps]]\nname = \n");
    assert!(
        error.starts_with("e.toml: invalid TOML: ") && error.contains("line 2"),
        "{error}"
    );
}

#[test]
fn invalid_values_are_rejected() {
    let app = |extra: &str| format!(r#"{{"apps": [{{"script": "a.sh", {extra}}}]}}"#);
    let error = file_error("e.json", &app(r#""name": "123""#));
    assert!(
        error.starts_with(r#"e.json: app "123": invalid app name "123""#),
        "{error}"
    );
    assert!(file_error("e.json", &app(r#""name": "all""#)).contains(r#"invalid app name "all""#));
    assert!(file_error("e.json", &app(r#""name": "a b""#)).contains("cannot contain whitespace"));
    let error = file_error("e.json", &app(r#""kill_signal": "SIGNOPE""#));
    assert_eq!(
        error,
        r#"e.json: app at index 0: unknown kill_signal "SIGNOPE": expected a signal name such as SIGINT or TERM"#
    );
    let error = file_error("e.json", &app(r#""script": "missing.sh""#));
    assert!(
        error.contains(r#"script "missing.sh" is not a file"#),
        "{error}"
    );
    assert_eq!(
        file_error("e.json", &app(r#""name": "w", "instances": 100000"#)),
        r#"e.json: app "w": invalid instances 100000: expected 1 to 1024"#
    );
    assert!(
        file_error("e.json", &app(r#""name": "a\nb""#))
            .contains(r#"invalid app name "a\nb": it cannot contain control characters"#)
    );
    assert!(
        file_error("e.json", &app(r#""namespace": "../x""#))
            .contains(r#"invalid namespace "../x": it cannot contain `/`"#)
    );
    assert_eq!(
        file_error("e.json", &app(r#""name": "w", "stop_exit_codes": [300]"#)),
        r#"e.json: app "w": invalid stop_exit_codes: 300 is not an exit status (0 to 255)"#
    );
    assert_eq!(
        file_error("e.json", &app(r#""name": "w", "env": {"K": "a\u0000b"}"#)),
        r#"e.json: app "w": invalid env: the value of "K" contains a NUL byte"#
    );
    let error = file_error("e.json", &app(r#""cwd": "nowhere""#));
    assert!(
        error.contains("working directory") && error.contains("does not exist"),
        "{error}"
    );
}
