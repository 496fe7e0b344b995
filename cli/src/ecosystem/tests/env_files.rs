//! `env_file` and `--env-file`: where the files are looked for, precedence, errors.

use super::{error_text, resolve, s, temp_dir, write};
use crate::ecosystem::StartOptions;

/// Every level sets `LEVEL`; each variable `Ln` is set by level n and every level below,
/// so each shows which level won for it.
const ECOSYSTEM: &str = r#"{"apps": [{
  "name": "api", "script": "a.sh",
  "env_file": ["conf/base.env", "conf/over.env"],
  "env": {"L3": "env", "L4": "env", "L5": "env"},
  "env_production": {"L4": "env_production", "L5": "env_production"}
}]}"#;

#[test]
fn precedence_from_cli_env_to_env_var() {
    let (_keep, dir) = temp_dir();
    write(&dir, "a.sh", "");
    write(&dir, "eco.json", ECOSYSTEM);
    write(
        &dir,
        "conf/base.env",
        "# comment\nINHERITED=base\nL1=base\nL2=base\nL3=base\nL4=base\nL5=base\n",
    );
    write(&dir, "conf/over.env", "L2=over\nL3=over\nQUOTED=\"a b\"\n");
    write(&dir, "cli.env", "L2=cli-file\nL3=cli-file\n");
    let options = StartOptions {
        env_name: Some(s("production")),
        env_files: vec!["cli.env".into()],
        env_vars: vec![(s("L5"), s("env-var"))],
        ..StartOptions::default()
    };
    let app = &resolve(&dir, "eco.json", &options).unwrap().apps[0];
    let shown = |name: &str| app.env[name].as_str();
    assert_eq!(
        shown("INHERITED"),
        "base",
        "env_file wins over the CLI's env"
    );
    assert_eq!(shown("L1"), "base");
    assert_eq!(
        shown("L2"),
        "cli-file",
        "later files win; --env-file comes last"
    );
    assert_eq!(shown("L3"), "env", "env wins over env files");
    assert_eq!(shown("L4"), "env_production");
    assert_eq!(shown("L5"), "env-var");
    assert_eq!(shown("QUOTED"), "a b");
    assert_eq!(
        app.env_explicit,
        ["INHERITED", "L1", "L2", "L3", "L4", "L5", "QUOTED"]
    );
}

#[test]
fn env_file_option_is_relative_to_the_cli_cwd() {
    let (_keep, dir) = temp_dir();
    write(&dir, "a.sh", "");
    write(&dir, "sub/x.env", "FROM=x\n");
    let options = StartOptions {
        env_files: vec!["sub/x.env".into()],
        interpreter: Some(s("sh")),
        ..StartOptions::default()
    };
    let app = &resolve(&dir, "a.sh", &options).unwrap().apps[0];
    assert_eq!(app.env["FROM"], "x");
    assert_eq!(app.env_explicit, ["FROM"]);
}

#[test]
fn a_single_env_file_string_is_relative_to_the_ecosystem_file() {
    let (_keep, dir) = temp_dir();
    write(&dir, "deploy/a.sh", "");
    write(&dir, "deploy/.env", "ONE=1\n");
    write(
        &dir,
        "deploy/eco.yaml",
        "apps:\n  - name: y\n    script: a.sh\n    env_file: .env\n",
    );
    let app = &resolve(&dir, "deploy/eco.yaml", &StartOptions::default())
        .unwrap()
        .apps[0];
    assert_eq!(app.env["ONE"], "1");
}

#[test]
fn missing_or_malformed_env_files_are_named() {
    let (_keep, dir) = temp_dir();
    write(&dir, "a.sh", "");
    let eco = |env_file: &str| {
        format!(r#"{{"apps": [{{"name": "w", "script": "a.sh", "env_file": {env_file}}}]}}"#)
    };
    write(&dir, "missing.json", &eco(r#""nope.env""#));
    let error = error_text(resolve(&dir, "missing.json", &StartOptions::default()));
    let missing = dir.join("nope.env");
    assert!(
        error.starts_with(&format!(
            "missing.json: app \"w\": env file {}: cannot read",
            missing.display()
        )) && error.contains("No such file"),
        "{error}"
    );
    write(&dir, "bad.env", "GOOD=1\n\nBROKEN LINE\n");
    write(&dir, "bad.json", &eco(r#"["bad.env"]"#));
    let error = error_text(resolve(&dir, "bad.json", &StartOptions::default()));
    assert_eq!(
        error,
        format!(
            "bad.json: app \"w\": env file {}: line 3: cannot parse \"BROKEN LINE\" (expected NAME=value)",
            dir.join("bad.env").display()
        )
    );
    write(&dir, "type.json", &eco("3"));
    let error = error_text(resolve(&dir, "type.json", &StartOptions::default()));
    assert_eq!(
        error,
        r#"type.json: app "w": key "env_file" must be a path or an array of paths, got number 3"#
    );
}
