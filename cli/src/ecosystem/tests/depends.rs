//! `depends_on` and `depends_timeout` keys, and the `env_origin` `--update-env` reads.

use super::{at, error_text, resolve, s, temp_dir, write};
use crate::ecosystem::{FreshEnv, StartOptions};
use zpm_proto::depends::{Condition, Dependency};

fn dep(name: &str, condition: Condition) -> Dependency {
    Dependency {
        name: s(name),
        condition,
    }
}

#[test]
fn depends_on_as_a_name_a_list_or_a_map_of_conditions() {
    let (_keep, dir) = temp_dir();
    write(
        &dir,
        "e.yaml",
        "apps:\n\
         - {name: a, script: sleep, args: '9', depends_on: db}\n\
         - {name: b, script: sleep, args: '9', depends_on: [db, cache]}\n\
         - name: c\n  script: sleep\n  args: '9'\n  depends_timeout: 5s\n  depends_on:\n    db: healthy\n    migrate: service_completed_successfully\n    cache: {condition: service_started}\n    queue:\n",
    );
    let resolved = resolve(&dir, "e.yaml", &StartOptions::default()).unwrap();
    let [a, b, c] = &resolved.apps[..] else {
        panic!("three apps expected")
    };
    assert_eq!(a.depends_on, [dep("db", Condition::Ready)]);
    assert_eq!(
        b.depends_on,
        [dep("db", Condition::Ready), dep("cache", Condition::Ready)]
    );
    let mut got = c.depends_on.clone();
    got.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(
        got,
        [
            dep("cache", Condition::Started),
            dep("db", Condition::Healthy),
            dep("migrate", Condition::CompletedSuccessfully),
            dep("queue", Condition::Ready),
        ]
    );
    assert_eq!(c.depends_timeout_ms, Some(5000));
}

#[test]
fn a_bad_condition_or_a_self_dependency_names_the_key() {
    let (_keep, dir) = temp_dir();
    write(
        &dir,
        "e.json",
        r#"{"apps": [{"name": "a", "script": "sleep", "depends_on": {"db": "soon"}}]}"#,
    );
    let text = error_text(resolve(&dir, "e.json", &StartOptions::default()));
    assert!(
        text.contains(r#"app "a": key "depends_on" must be a name, a list of names"#),
        "{text}"
    );
    write(
        &dir,
        "e.json",
        r#"{"apps": [{"name": "a", "script": "sleep", "depends_on": "a"}]}"#,
    );
    let text = error_text(resolve(&dir, "e.json", &StartOptions::default()));
    assert!(text.contains(r#""a" depends on itself"#), "{text}");
}

#[test]
fn env_origin_records_what_update_env_reads_again() {
    let (_keep, dir) = temp_dir();
    write(&dir, "x.env", "FROM_FILE=1\n");
    write(
        &dir,
        "e.json",
        r#"{"apps": [{"name": "a", "script": "sleep", "args": "9", "env": {"K": "file"},
                      "env_prod": {"K": "prod"}}]}"#,
    );
    let options = StartOptions {
        env_name: Some(s("prod")),
        env_files: vec!["x.env".into()],
        env_vars: vec![(s("V"), s("var"))],
        ..StartOptions::default()
    };
    let resolved = resolve(&dir, "e.json", &options).unwrap();
    let origin = &resolved.apps[0].env_origin;
    assert_eq!(origin.file.as_deref(), Some(at(&dir, "e.json").as_str()));
    assert_eq!(origin.env_name.as_deref(), Some("prod"));
    assert_eq!(origin.env_files, [at(&dir, "x.env")]);
    assert_eq!(origin.overrides, [s("V")]);

    write(&dir, "x.env", "OTHER=2\n");
    let cli_env = super::cli_env();
    let (env, explicit) = FreshEnv::new(&cli_env, &dir)
        .read(origin, "a", "default")
        .unwrap();
    assert_eq!(env.get("K").map(String::as_str), Some("prod"));
    assert_eq!(env.get("OTHER").map(String::as_str), Some("2"));
    assert!(!env.contains_key("FROM_FILE"), "removed from the file");
    assert!(!env.contains_key("V"), "God keeps --env-var values");
    assert!(explicit.contains(&s("OTHER")) && explicit.contains(&s("K")));
}
