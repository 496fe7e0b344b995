//! `watch`, `ignore_watch`, `watch_delay`: every form of the keys, the flags over them,
//! paths resolved against the app's cwd, and messages naming the key.

use super::serving::{assert_key_errors, key_error};
use super::{resolve, s, temp_dir, write};
use crate::ecosystem::{StartOptions, WatchDraft};
use zpm_proto::watch::Watch;

#[test]
fn keys_become_the_spec() {
    let (_keep, dir) = temp_dir();
    write(&dir, "app/a.sh", "");
    write(
        &dir,
        "e.json",
        r#"{"apps": [{"name": "on", "script": "a.sh", "cwd": "app", "watch": true},
           {"name": "paths", "script": "a.sh", "cwd": "app", "watch": ["src", "./lib/", "../conf"],
            "ignore_watch": ["*.log", "tmp"], "watch_delay": "2s"},
           {"name": "one", "script": "a.sh", "cwd": "app", "watch": "src", "ignore_watch": "*.tmp",
            "watch_delay": 100},
           {"name": "off", "script": "a.sh", "cwd": "app", "watch": false, "ignore_watch": "x"},
           {"name": "plain", "script": "a.sh", "cwd": "app"}]}"#,
    );
    let resolved = resolve(&dir, "e.json", &StartOptions::default()).unwrap();
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
    let [on, paths, one, off, plain] = &resolved.apps[..] else {
        panic!("five apps expected")
    };
    let app = |p: &str| dir.join("app").join(p).to_str().unwrap().to_owned();
    assert_eq!(
        on.watch,
        Watch {
            enabled: true,
            ..Watch::default()
        }
    );
    assert_eq!(
        paths.watch,
        Watch {
            enabled: true,
            paths: vec![
                app("src"),
                app("lib"),
                dir.join("conf").to_str().unwrap().to_owned()
            ],
            ignore: vec![s("*.log"), s("tmp")],
            delay_ms: 2000,
        }
    );
    assert_eq!(one.watch.paths, [app("src")]);
    assert_eq!(
        (one.watch.ignore.clone(), one.watch.delay_ms),
        (vec![s("*.tmp")], 100)
    );
    assert!(
        !off.watch.enabled && off.watch.ignore == [s("x")],
        "kept for `zpm watch`"
    );
    assert!(plain.watch.is_default());
}

#[test]
fn flags_win_over_the_file() {
    let (_keep, dir) = temp_dir();
    write(&dir, "a.sh", "");
    write(
        &dir,
        "e.json",
        r#"{"apps": [{"name": "w", "script": "a.sh", "watch": ["src"], "watch_delay": 50,
            "ignore_watch": "*.log"}]}"#,
    );
    let options = StartOptions {
        watch: WatchDraft {
            enabled: Some(true),
            paths: Vec::new(),
            ignore: Some(vec![s("dist")]),
            delay_ms: None,
        },
        ..StartOptions::default()
    };
    let app = &resolve(&dir, "e.json", &options).unwrap().apps[0];
    assert_eq!(
        app.watch,
        Watch {
            enabled: true,
            paths: Vec::new(),
            ignore: vec![s("dist")],
            delay_ms: 50,
        },
        "a bare --watch means the cwd; the file's delay stays"
    );
}

#[test]
fn bad_values_name_the_key() {
    assert_key_errors(&[
        (
            r#""watch": 1"#,
            r#"key "watch" must be true, false, a path or an array of paths, got number 1"#,
        ),
        (
            r#""watch": [""]"#,
            r#"key "watch" must be true, false, a path or an array of paths, got an array"#,
        ),
        (
            r#""ignore_watch": {}"#,
            r#"key "ignore_watch" must be a glob or an array of globs, got an object"#,
        ),
        (
            r#""watch_delay": "soon""#,
            r#"key "watch_delay" must be milliseconds or a duration such as "1s", got string "soon""#,
        ),
    ]);
    assert!(
        key_error(r#""watch": true, "watch_delay": "2h""#).contains("invalid watch_delay"),
        "God's cap applies in the CLI too"
    );
}
