#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use super::*;

fn spec() -> AppSpec {
    AppSpec::new("api", vec!["/bin/sleep".into(), "9".into()], "/tmp")
}

fn error(result: Result<impl std::fmt::Debug, Invalid>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn good_names_pass() {
    for name in [
        "api",
        "web-1",
        "a.b",
        "x_y",
        "café",
        &"n".repeat(MAX_NAME_BYTES),
    ] {
        assert_eq!(app_name(name), Ok(()), "{name:?}");
        assert_eq!(namespace(name), Ok(()), "{name:?}");
    }
}

#[test]
fn bad_names_say_why() {
    let cases = [
        ("", "invalid app name \"\": it cannot be empty"),
        (
            "a\nb",
            "invalid app name \"a\\nb\": it cannot contain control characters",
        ),
        ("\u{1b}[31mred", "it cannot contain control characters"),
        ("a b", "it cannot contain whitespace"),
        ("../..", "it cannot contain `/`, `\\` or `..`, or be `.`"),
        ("a/b", "`/`"),
        ("a\\b", "`/`"),
        ("..", "`..`"),
        (".", "be `.`"),
        ("all", "invalid app name \"all\": `all` means every app"),
        (
            "0",
            "invalid app name \"0\": it cannot be only digits (ids are numbers)",
        ),
        ("123", "only digits"),
    ];
    for (name, expected) in cases {
        let message = error(app_name(name));
        assert!(message.contains(expected), "{name:?}: {message}");
    }
    let long = "n".repeat(MAX_NAME_BYTES + 1);
    assert!(error(app_name(&long)).ends_with("it is longer than 64 bytes"));
    assert!(error(namespace("all")).starts_with("invalid namespace \"all\""));
}

#[test]
fn one_signal_table_for_parsing_and_validation() {
    assert_eq!(parse_signal("SIGTERM"), Some(Signal::SIGTERM));
    assert_eq!(parse_signal("int"), Some(Signal::SIGINT));
    assert_eq!(parse_signal("9"), Some(Signal::SIGKILL));
    assert_eq!(parse_signal("SIGNOPE"), None);
    assert_eq!(parse_signal("0"), None);
    assert_eq!(signal_name("kill_signal", "term").unwrap(), "SIGTERM");
    assert_eq!(signal_name("signal", "SIGUSR2").unwrap(), "SIGUSR2");
    assert_eq!(
        error(signal_name("signal", "SIGFOO")),
        "unknown signal \"SIGFOO\": expected a signal name such as SIGINT or TERM"
    );
}

#[test]
fn instances_are_bounded() {
    assert_eq!(instances(1), Ok(1));
    assert_eq!(instances(MAX_INSTANCES), Ok(MAX_INSTANCES));
    assert_eq!(
        error(instances(0)),
        "invalid instances 0: expected 1 to 1024"
    );
    assert!(error(instances(100_000)).starts_with("invalid instances 100000"));
    assert_eq!(
        error(scale("web", 0)),
        "app \"web\": invalid instances 0: expected 1 to 1024"
    );
}

#[test]
fn argv_cwd_and_env_rules() {
    assert!(error(argv(&[])).contains("it is empty"));
    assert!(error(argv(&[String::new()])).contains("argv[0]) is empty"));
    assert!(error(argv(&["a".into(), "b\0".into()])).contains("argv[1] contains a NUL byte"));
    assert!(error(cwd("relative/dir")).contains("must be an absolute path"));
    assert!(error(cwd("/a\0b")).contains("NUL"));
    let mut vars = BTreeMap::new();
    vars.insert("GOOD".to_owned(), "value".to_owned());
    assert_eq!(env(&vars), Ok(()));
    vars.insert("BAD".to_owned(), "a\0b".to_owned());
    assert!(error(env(&vars)).contains("the value of \"BAD\" contains a NUL byte"));
    assert!(error(env_name("A=B")).contains("without `=`"));
    let many: BTreeMap<String, String> = (0..=MAX_ENV_ENTRIES)
        .map(|n| (format!("V{n}"), String::new()))
        .collect();
    assert!(error(env(&many)).contains("at most 4096"));
}

#[test]
fn exit_codes_are_bounded() {
    assert_eq!(stop_exit_codes(&[0, 2, 255]), Ok(()));
    assert!(error(stop_exit_codes(&[256])).contains("256 is not an exit status"));
    assert!(error(stop_exit_codes(&[-1])).contains("-1 is not an exit status"));
    assert!(error(stop_exit_codes(&vec![0; MAX_STOP_EXIT_CODES + 1])).contains("at most 256"));
}

#[test]
fn whole_specs() {
    assert_eq!(app_spec(&spec()), Ok(()));
    let mut bad = spec();
    bad.kill_signal = "SIGFOO".into();
    assert_eq!(
        error(start_apps(&[spec(), bad])),
        "app \"api\": unknown kill_signal \"SIGFOO\": expected a signal name such as SIGINT or TERM"
    );
    let mut unnamed = spec();
    unnamed.name = "all".into();
    assert!(error(start_apps(&[unnamed])).starts_with("app at index 0: invalid app name \"all\""));
    let mut slow = spec();
    slow.kill_timeout_ms = u64::MAX;
    assert!(error(app_spec(&slow)).starts_with("invalid kill_timeout_ms"));
    let mut huge = spec();
    huge.argv.push("x".repeat(MAX_SPEC_BYTES));
    assert!(error(app_spec(&huge)).contains("bytes of text, at most"));
}

#[test]
fn request_size() {
    assert_eq!(error(start_apps(&[])), "no apps to start");
    let many = vec![spec(); MAX_APPS_PER_REQUEST + 1];
    assert_eq!(
        error(start_apps(&many)),
        "257 apps in one request, at most 256"
    );
}

#[test]
fn agent_roles_are_short_lowercase_words() {
    for role in [
        "spawner",
        "py-watcher",
        "a",
        "x_9",
        &"r".repeat(MAX_ROLE_BYTES),
    ] {
        assert_eq!(agent_role(role), Ok(()), "{role:?}");
    }
    for role in [
        "",
        "Py",
        "a b",
        "a\nb",
        "é",
        "a.b",
        "a/b",
        &"r".repeat(MAX_ROLE_BYTES + 1),
    ] {
        let message = error(agent_role(role));
        assert!(
            message.starts_with("invalid agent role"),
            "{role:?}: {message}"
        );
        assert!(message.contains("1 to 32 characters"), "{message}");
    }
}

#[test]
fn depends_on_watch_and_env_origin_are_checked() {
    use crate::depends::{Condition, Dependency};
    let dep = |name: &str| Dependency {
        name: name.into(),
        condition: Condition::Ready,
    };
    let mut s = spec();
    s.depends_on = vec![dep("db"), dep("cache")];
    assert_eq!(app_spec(&s), Ok(()));
    s.depends_on = vec![dep("api")];
    assert!(error(app_spec(&s)).contains("\"api\" depends on itself"));
    s.depends_on = vec![dep("db"), dep("db")];
    assert!(error(app_spec(&s)).contains("\"db\" is named twice"));
    s.depends_on = vec![dep("a b")];
    assert!(error(app_spec(&s)).contains("depends_on: invalid app name"));
    s.depends_on = (0..=MAX_DEPENDENCIES)
        .map(|i| dep(&format!("d{i}")))
        .collect();
    assert!(error(app_spec(&s)).contains("at most 64"));
    s.depends_on = vec![dep("db")];
    s.depends_timeout_ms = Some(0);
    assert!(error(app_spec(&s)).contains("invalid depends_timeout 0 ms"));

    let mut s = spec();
    s.watch.enabled = true;
    s.watch.paths = vec!["relative/dir".into()];
    assert!(error(app_spec(&s)).contains("invalid watch path \"relative/dir\""));
    s.watch.paths = vec!["/srv/app".into()];
    s.watch.ignore = vec!["bad\nglob".into()];
    assert!(error(app_spec(&s)).contains("invalid ignore_watch"));
    s.watch.ignore = vec!["*.log".into()];
    s.watch.delay_ms = 3_600_001;
    assert!(error(app_spec(&s)).contains("invalid watch_delay"));

    let mut s = spec();
    s.env_origin.overrides = vec!["NOT_SET".into()];
    assert!(error(app_spec(&s)).contains("override \"NOT_SET\" is not in env"));
    s.env_origin.overrides.clear();
    s.env_origin.file = Some("eco.json".into());
    assert!(error(app_spec(&s)).contains("invalid env_origin path"));
}

#[test]
fn an_apply_names_each_app_once_per_namespace() {
    let mut other = spec();
    other.namespace = "jobs".into();
    assert_eq!(apply_apps(&[spec(), other]), Ok(()));
    assert_eq!(
        error(apply_apps(&[spec(), spec()])),
        r#"app "api" of namespace "default" is declared twice"#
    );
    assert_eq!(error(apply_apps(&[])), "no apps to start");
}
