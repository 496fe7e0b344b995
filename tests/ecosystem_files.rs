//! Ecosystem files in every format a PM2 user brings, and clear errors for bad ones.

use crate::harness::{Zpm, poll};

/// An app that records its env, so the test sees what the spawner gave it.
fn recorder(zpm: &Zpm) -> String {
    let script = zpm.script(
        "rec.sh",
        "#!/bin/sh\necho \"$ZPM_NAME $MODE $PORT\" > \"rec-$ZPM_NAME.txt\"\nexec sleep 1000\n",
    );
    script.display().to_string()
}

fn recorded(zpm: &Zpm, name: &str) -> String {
    poll(&format!("{name} recorded its env"), || {
        std::fs::read_to_string(zpm.path(&format!("rec-{name}.txt")))
            .ok()
            .filter(|s| s.ends_with('\n'))
    })
    .trim()
    .to_owned()
}

fn start_file(zpm: &Zpm, file: &str, body: &str, env: Option<&str>) {
    let path = zpm.path(file);
    std::fs::write(&path, body).unwrap();
    let path = path.display().to_string();
    let mut args = vec!["start", path.as_str()];
    if let Some(env) = env {
        args.extend(["--env", env]);
    }
    zpm.ok(&args);
}

#[test]
fn json_yaml_and_toml_with_env_blocks() {
    let zpm = Zpm::new();
    let script = recorder(&zpm);
    start_file(
        &zpm,
        "eco.json",
        &format!(
            r#"{{"apps": [{{"name": "j", "script": "{script}", "env": {{"MODE": "dev", "PORT": 1}}, "env_production": {{"MODE": "prod"}}}}]}}"#
        ),
        Some("production"),
    );
    assert_eq!(recorded(&zpm, "j"), "j prod 1");
    start_file(
        &zpm,
        "eco.yaml",
        &format!(
            "apps:\n  - name: y\n    script: {script}\n    env:\n      MODE: yaml\n      PORT: 2\n    instances: 2\n"
        ),
        None,
    );
    assert_eq!(recorded(&zpm, "y"), "y yaml 2");
    start_file(
        &zpm,
        "eco.toml",
        &format!(
            "[[apps]]\nname = \"t\"\nscript = \"{script}\"\nnamespace = \"tomls\"\n[apps.env]\nMODE = \"toml\"\nPORT = 3\n"
        ),
        None,
    );
    assert_eq!(recorded(&zpm, "t"), "t toml 3");
    let rows = zpm.ls();
    assert_eq!(rows.len(), 4, "j + two y instances + t: {rows:?}");
    assert!(
        rows.iter()
            .any(|r| r["name"] == "t" && r["namespace"] == "tomls")
    );
}

#[test]
fn pm2_ecosystem_config_js() {
    let zpm = Zpm::new();
    let script = recorder(&zpm);
    let has_node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let body = format!(
        "module.exports = {{ apps: [{{ name: 'js', script: '{script}', env: {{ MODE: 'js', PORT: 40 + 2 }} }}] }};\n"
    );
    let path = zpm.path("ecosystem.config.js");
    std::fs::write(&path, body).unwrap();
    let path = path.display().to_string();
    if has_node {
        zpm.ok(&["start", &path]);
        assert_eq!(recorded(&zpm, "js"), "js js 42");
    } else {
        let err = zpm.fails(&["start", &path]);
        assert!(
            err.contains("node"),
            "without node the error must say so: {err}"
        );
    }
}

#[test]
fn bad_files_and_options_fail_clearly_and_start_nothing() {
    let zpm = Zpm::new();
    let bad_type = zpm.path("bad.json");
    std::fs::write(
        &bad_type,
        r#"{"apps": [{"name": "api", "script": "x.sh", "instances": "two"}]}"#,
    )
    .unwrap();
    let err = zpm.fails(&["start", &bad_type.display().to_string()]);
    assert!(
        err.contains("bad.json") && err.contains("api") && err.contains("instances"),
        "{err}"
    );

    let broken = zpm.path("broken.yaml");
    std::fs::write(&broken, "apps: [\n  - name: x\n").unwrap();
    let err = zpm.fails(&["start", &broken.display().to_string()]);
    assert!(err.contains("broken.yaml"), "{err}");

    let err = zpm.fails(&["start", "/definitely/not/here.sh"]);
    assert!(err.contains("not/here.sh"), "{err}");
    let err = zpm.fails(&["start", "sleep", "--min-uptime", "soon"]);
    assert!(err.contains("--min-uptime"), "{err}");
    let err = zpm.fails(&["start", "sleep", "-i", "lots"]);
    assert!(err.contains("lots"), "{err}");
    assert!(zpm.ls().is_empty(), "nothing may start from bad input");
}

#[test]
fn start_forms_executable_path_command_and_shell_string() {
    let zpm = Zpm::new();
    let exe = zpm.script("tool", "#!/bin/sh\nwhile true; do sleep 1; done\n");
    zpm.ok(&["start", &exe.display().to_string(), "--", &zpm.marker]);
    zpm.ok(&["start", "sleep", "--name", "path-sleep", "--", "1000"]);
    zpm.ok(&[
        "start",
        &format!("sleep 1000 ; echo {}", zpm.marker),
        "--name",
        "shell",
    ]);
    let rows = zpm.wait_ls("three online", |rows| {
        rows.len() == 3 && rows.iter().all(|r| r["status"] == "online")
    });
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["tool", "path-sleep", "shell"]);
    zpm.wait_marked(2);
}
