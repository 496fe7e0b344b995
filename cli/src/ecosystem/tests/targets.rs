//! Scripts, executables, commands on PATH and command strings given on the command line.

use super::{at, error_text, make_executable, resolve, s, temp_dir, write};
use crate::ecosystem::StartOptions;
use zpm_proto::AppSpec;

fn with_args(args: &[&str]) -> StartOptions {
    StartOptions {
        args: args.iter().map(|a| s(a)).collect(),
        ..StartOptions::default()
    }
}

#[test]
fn scripts_run_with_the_interpreter_of_their_extension() {
    let (_keep, dir) = temp_dir();
    for (file, interpreter, name) in [
        ("hello.sh", "bash", "hello"),
        ("tool.py", "python3", "tool"),
        ("srv.js", "node", "srv"),
        ("m.mjs", "node", "m"),
    ] {
        write(&dir, file, "");
        let resolved = resolve(&dir, file, &with_args(&["--x", "1"])).unwrap();
        let app = &resolved.apps[0];
        assert_eq!(app.argv, [s(interpreter), at(&dir, file), s("--x"), s("1")]);
        assert_eq!(app.name, name);
        assert_eq!(app.cwd, dir.to_str().unwrap());
        assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
    }
}

#[test]
fn defaults_are_pm2s() {
    let (_keep, dir) = temp_dir();
    write(&dir, "hello.sh", "");
    let app = resolve(&dir, "./hello.sh", &StartOptions::default())
        .unwrap()
        .apps
        .remove(0);
    let mut expected = AppSpec::new(
        "hello",
        vec![s("bash"), at(&dir, "hello.sh")],
        dir.to_str().unwrap(),
    );
    expected.env = super::cli_env();
    assert_eq!(app, expected);
}

#[test]
fn executable_files_run_directly() {
    let (_keep, dir) = temp_dir();
    let path = write(&dir, "bin/serve", "#!/bin/sh\n");
    make_executable(&path);
    let app = &resolve(&dir, "bin/serve", &with_args(&["a"])).unwrap().apps[0];
    assert_eq!(app.argv, [at(&dir, "bin/serve"), s("a")]);
    assert_eq!(app.name, "serve");
}

#[test]
fn non_executable_file_needs_an_interpreter() {
    let (_keep, dir) = temp_dir();
    write(&dir, "data.bin", "");
    let error = error_text(resolve(&dir, "data.bin", &StartOptions::default()));
    assert!(
        error.starts_with(&format!(
            "{} is not executable; pass --interpreter",
            at(&dir, "data.bin")
        )),
        "{error}"
    );
    let none = StartOptions {
        interpreter: Some(s("none")),
        ..StartOptions::default()
    };
    write(&dir, "x.sh", "");
    assert!(error_text(resolve(&dir, "x.sh", &none)).contains("is not executable"));
}

#[test]
fn interpreter_option_overrides_the_extension() {
    let (_keep, dir) = temp_dir();
    write(&dir, "data.bin", "");
    let options = StartOptions {
        interpreter: Some(s("python3 -u")),
        ..with_args(&["z"])
    };
    let app = &resolve(&dir, "data.bin", &options).unwrap().apps[0];
    assert_eq!(
        app.argv,
        [s("python3"), s("-u"), at(&dir, "data.bin"), s("z")]
    );
    let path = write(&dir, "run.sh", "#!/bin/sh\n");
    make_executable(&path);
    let none = StartOptions {
        interpreter: Some(s("none")),
        ..StartOptions::default()
    };
    assert_eq!(
        resolve(&dir, "run.sh", &none).unwrap().apps[0].argv,
        [at(&dir, "run.sh")]
    );
    let missing = StartOptions {
        interpreter: Some(s("no-such-interpreter-zpm")),
        ..StartOptions::default()
    };
    let resolved = resolve(&dir, "run.sh", &missing).unwrap();
    assert_eq!(
        resolved.warnings,
        [r#"interpreter "no-such-interpreter-zpm" was not found on PATH"#]
    );
}

#[test]
fn commands_are_found_on_path() {
    let (_keep, dir) = temp_dir();
    let options = StartOptions {
        name: Some(s("nap")),
        ..with_args(&["30"])
    };
    let app = &resolve(&dir, "sleep", &options).unwrap().apps[0];
    assert!(
        app.argv[0].starts_with('/') && app.argv[0].ends_with("/sleep"),
        "{:?}",
        app.argv
    );
    assert_eq!(app.argv[1..], [s("30")]);
    assert_eq!(app.name, "nap");
    let app = &resolve(&dir, "sleep", &StartOptions::default())
        .unwrap()
        .apps[0];
    assert_eq!(app.name, "sleep");
}

#[test]
fn strings_with_spaces_run_with_sh() {
    let (_keep, dir) = temp_dir();
    let resolved = resolve(
        &dir,
        "python3 -m http.server 8000",
        &StartOptions::default(),
    )
    .unwrap();
    let app = &resolved.apps[0];
    assert_eq!(
        app.argv,
        [s("sh"), s("-c"), s("python3 -m http.server 8000")]
    );
    assert_eq!(app.name, "python3");
    assert!(resolved.warnings.is_empty());
    let app = &resolve(&dir, "/usr/bin/env FOO=1 true", &StartOptions::default())
        .unwrap()
        .apps[0];
    assert_eq!(app.name, "env");
}

#[test]
fn unknown_targets_are_errors() {
    let (_keep, dir) = temp_dir();
    let error = error_text(resolve(&dir, "no-such-thing-zpm", &StartOptions::default()));
    assert_eq!(
        error,
        r#""no-such-thing-zpm" is not a file, an ecosystem file, an app, or a command on PATH"#
    );
    let error = error_text(resolve(&dir, "missing.json", &StartOptions::default()));
    assert_eq!(
        error,
        r#""missing.json" is not a file, an ecosystem file, an app, or a command on PATH"#
    );
}

#[test]
fn cwd_env_and_validation_from_options() {
    let (_keep, dir) = temp_dir();
    write(&dir, "work/app.sh", "");
    let options = StartOptions {
        cwd: Some("work".into()),
        env_vars: vec![
            (s("A"), s("1")),
            (s("INHERITED"), s("over")),
            (s("A"), s("2")),
        ],
        kill_timeout_ms: Some(3000),
        ..StartOptions::default()
    };
    let resolved = resolve(&dir, "app.sh", &options).unwrap();
    let app = &resolved.apps[0];
    assert_eq!(app.cwd, at(&dir, "work"));
    assert_eq!(app.argv, [s("bash"), at(&dir, "work/app.sh")]);
    assert_eq!(
        (app.env["A"].as_str(), app.env["INHERITED"].as_str()),
        ("2", "over")
    );
    assert_eq!(app.env_explicit, ["A", "INHERITED"]);
    assert_eq!(app.kill_timeout_ms, 3000);
    let bad_cwd = StartOptions {
        cwd: Some("nowhere".into()),
        ..StartOptions::default()
    };
    assert!(error_text(resolve(&dir, "sleep", &bad_cwd)).contains("does not exist"));
    let bad_name = StartOptions {
        name: Some(s("42")),
        ..StartOptions::default()
    };
    assert!(error_text(resolve(&dir, "sleep", &bad_name)).contains("only digits"));
    let env_name = StartOptions {
        env_name: Some(s("prod")),
        instances: Some(0),
        ..StartOptions::default()
    };
    let resolved = resolve(&dir, "sleep", &env_name).unwrap();
    assert_eq!(
        resolved.warnings,
        ["--env prod only applies to ecosystem files; ignored"]
    );
    assert_eq!(resolved.apps[0].instances, super::cpus());
}
