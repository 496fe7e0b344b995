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
