//! The CLI surface that needs no daemon.

use assert_cmd::Command;
use predicates::prelude::*;

fn zpm() -> Command {
    Command::cargo_bin("zpm").unwrap()
}

#[test]
fn version_text_and_json() {
    zpm()
        .arg("version")
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"^zpm \d+\.\d+\.\d+ \(protocol v1\)\n$").unwrap());
    let out = zpm()
        .args(["version", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["protocol"], 1);
    assert!(json["version"].as_str().unwrap().contains('.'));
}

#[test]
fn completions_for_bash_name_the_subcommands() {
    zpm()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("completions").and(predicate::str::contains("version")));
}

#[test]
fn unknown_subcommand_fails_with_a_clear_error() {
    zpm()
        .arg("frobnicate")
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "unrecognized subcommand 'frobnicate'",
        ));
}

#[test]
fn keygen_writes_a_private_key_once() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    zpm()
        .arg("keygen")
        .env("ZPM_HOME", &home)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            home.join("key").display().to_string(),
        ));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home), 0o700);
    assert_eq!(mode(&home.join("key")), 0o600);
    zpm_tunnel::Key::load(&home.join("key")).unwrap();
    let before = std::fs::read(home.join("key")).unwrap();
    zpm()
        .arg("keygen")
        .env("ZPM_HOME", &home)
        .assert()
        .failure()
        .stderr(predicate::str::contains("already exists"));
    assert_eq!(std::fs::read(home.join("key")).unwrap(), before);
    let out = dir.path().join("elsewhere.key");
    zpm()
        .args(["keygen", "--out"])
        .arg(&out)
        .env("ZPM_HOME", &home)
        .assert()
        .success();
    assert_eq!(mode(&out), 0o600);
}
