//! `zpm apply FILE`: the plan first (start, reload, restart, scale, delete; changed
//! settings old → new, secrets masked), then done; `--dry-run` changes nothing, a second
//! apply of the same file does nothing, `--prune` deletes what the file's namespaces no
//! longer name; God refuses a bad `app.apply` sent directly.

use crate::harness::Zpm;
use crate::validation::{good_spec, rpc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use zpm_rpc::ErrorCode;

/// An app of the file: a shell that idles, marked (its `$1`) so the guard ends it.
fn idle_app(zpm: &Zpm, name: &str, extra: Value) -> Value {
    let script = zpm.script("idle.sh", "#!/bin/sh\nwhile true; do sleep 1; done\n");
    let mut app = json!({
        "name": name,
        "script": script.to_str().unwrap(),
        "args": [zpm.marker],
    });
    for (key, value) in extra.as_object().unwrap() {
        app[key] = value.clone();
    }
    app
}

fn write_file(zpm: &Zpm, apps: &[Value]) -> String {
    let path = zpm.path("ecosystem.json");
    std::fs::write(&path, json!({ "apps": apps }).to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// (name, instance) → pid of every row.
fn pids(zpm: &Zpm) -> BTreeMap<(String, u64), u64> {
    zpm.ls()
        .iter()
        .map(|row| {
            let key = (
                row["name"].as_str().unwrap().to_owned(),
                row["id"].as_u64().unwrap(),
            );
            (key, row["pid"].as_u64().unwrap_or(0))
        })
        .collect()
}

#[test]
fn dry_run_changes_nothing_then_apply_starts_and_again_does_nothing() {
    let zpm = Zpm::new();
    let file = write_file(
        &zpm,
        &[
            idle_app(&zpm, "web", json!({"instances": 2})),
            idle_app(&zpm, "worker", json!({})),
        ],
    );
    let planned = zpm.ok(&["apply", &file, "--dry-run"]);
    assert!(planned.contains("+ start web (2 instances)"), "{planned}");
    assert!(planned.contains("+ start worker (1 instance)"), "{planned}");
    assert!(
        planned.contains("dry run: nothing was changed"),
        "{planned}"
    );
    assert!(zpm.ls().is_empty(), "a dry run started nothing");
    assert!(zpm.marked().is_empty());

    let done = zpm.ok(&["apply", &file]);
    assert!(
        done.starts_with("+ start web (2 instances)\n+ start worker"),
        "{done}"
    );
    zpm.wait_marked(3);
    let before = pids(&zpm);
    assert_eq!(before.len(), 3);

    let again = zpm.ok(&["apply", &file]);
    assert_eq!(again.trim(), "nothing to do: 2 apps unchanged");
    assert_eq!(pids(&zpm), before, "an unchanged apply touches nothing");
}

#[test]
fn changed_env_is_shown_old_to_new_secrets_masked_and_json_is_the_plan() {
    let zpm = Zpm::new();
    let env = |port: &str, secret: &str| json!({"env": {"PORT": port, "DB_PASSWORD": secret}});
    let idle = idle_app(&zpm, "plain", json!({}));
    let file = write_file(
        &zpm,
        &[
            idle_app(&zpm, "api", env("3000", "hunter2-old")),
            idle.clone(),
        ],
    );
    zpm.ok(&["apply", &file]);
    zpm.wait_marked(2);
    let before = pids(&zpm);

    write_file(
        &zpm,
        &[idle_app(&zpm, "api", env("3001", "hunter2-new")), idle],
    );
    let planned = zpm.ok(&["apply", &file, "--dry-run"]);
    assert!(
        planned.contains("~ restart api: env.DB_PASSWORD **** → ****; env.PORT 3000 → 3001"),
        "{planned}"
    );
    assert!(planned.contains("= unchanged: plain"), "{planned}");
    assert!(
        !planned.contains("hunter2"),
        "a secret was printed: {planned}"
    );
    assert_eq!(pids(&zpm), before, "a dry run restarts nothing");

    let plan = zpm.json(&["apply", &file, "--dry-run"]);
    assert_eq!(plan["executed"], json!(false));
    assert!(!plan.to_string().contains("hunter2"), "{plan}");
    let apps = plan["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 2);
    assert_eq!(apps[0]["name"], "api");
    assert_eq!(apps[0]["namespace"], "default");
    assert_eq!(apps[0]["action"], "restart");
    assert_eq!(apps[0]["instances"], 1);
    assert_eq!(
        apps[0]["changes"],
        json!([
            {"key": "env.DB_PASSWORD", "old": "****", "new": "****"},
            {"key": "env.PORT", "old": "3000", "new": "3001"},
        ])
    );
    assert_eq!(apps[1]["action"], "unchanged");
    assert!(apps[1].get("changes").is_none());

    let done = zpm.json(&["apply", &file]);
    assert_eq!(done["executed"], json!(true));
    assert_eq!(done["apps"], plan["apps"]);
    let rows = done["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{done}");
    let after = pids(&zpm);
    let api = |p: &BTreeMap<(String, u64), u64>| p[&("api".to_owned(), 0)];
    assert_ne!(api(&after), api(&before), "api was restarted");
    assert_eq!(
        after[&("plain".to_owned(), 1)],
        before[&("plain".to_owned(), 1)],
        "plain was left alone"
    );
    let shown = zpm.ok(&["describe", "api"]);
    assert!(shown.contains("3001"), "{shown}");
    assert_eq!(
        zpm.ok(&["apply", &file]).trim(),
        "nothing to do: 2 apps unchanged"
    );
}

#[test]
fn prune_deletes_apps_of_the_files_namespaces_that_it_no_longer_names() {
    let zpm = Zpm::new();
    let keep = idle_app(&zpm, "keep", json!({}));
    let file = write_file(&zpm, &[keep.clone(), idle_app(&zpm, "old", json!({}))]);
    zpm.ok(&["apply", &file]);
    let other = write_file(
        &zpm,
        &[idle_app(&zpm, "elsewhere", json!({"namespace": "jobs"}))],
    );
    zpm.ok(&["apply", &other]);
    zpm.wait_marked(3);

    let file = write_file(&zpm, &[keep]);
    let without = zpm.ok(&["apply", &file]);
    assert_eq!(
        without.trim(),
        "nothing to do: 1 app unchanged",
        "no prune, no delete"
    );
    let planned = zpm.ok(&["apply", &file, "--prune"]);
    assert!(planned.contains("- delete old (1 instance)"), "{planned}");
    let deleted: Vec<&str> = planned.lines().filter(|l| l.starts_with("- ")).collect();
    assert_eq!(
        deleted,
        ["- delete old (1 instance)"],
        "not another namespace's"
    );
    let names: Vec<String> = zpm
        .ls()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["keep", "elsewhere"]);
    zpm.wait_marked(2);
}

#[test]
fn a_listening_app_is_reloaded_a_plain_one_restarted_and_instances_scaled() {
    let zpm = Zpm::new();
    let socket = zpm.path("srv.sock");
    let listen = json!({"listen": [format!("unix:{}", socket.display())]});
    let with = |extra: &Value, mode: &str| {
        let mut all = extra.clone();
        all["env"] = json!({"MODE": mode});
        all
    };
    let apps = |mode: &str, plain_instances: u32| {
        [
            idle_app(&zpm, "srv", with(&listen, mode)),
            idle_app(
                &zpm,
                "plain",
                with(&json!({"instances": plain_instances}), mode),
            ),
        ]
    };
    let file = write_file(&zpm, &apps("a", 1));
    zpm.ok(&["apply", &file]);
    zpm.wait_marked(2);
    let before = pids(&zpm);

    write_file(&zpm, &apps("b", 2));
    let done = zpm.ok(&["apply", &file]);
    assert!(done.contains("~ reload srv: env.MODE a → b"), "{done}");
    assert!(
        done.contains("~ restart plain: instances 1 → 2; env.MODE a → b"),
        "{done}"
    );
    zpm.wait_marked(3);
    let after = pids(&zpm);
    assert_eq!(after.len(), 3, "{after:?}");
    for (key, pid) in &before {
        assert_ne!(after[key], *pid, "{key:?} got a new run");
    }
    let described = zpm.json(&["describe", "plain"]);
    for app in described.as_array().unwrap() {
        assert_eq!(app["spec"]["env"]["MODE"], "b", "{app}");
    }

    write_file(&zpm, &apps("b", 1));
    let scaled = zpm.ok(&["apply", &file]);
    assert!(
        scaled.contains("~ scale plain: instances 2 → 1"),
        "{scaled}"
    );
    assert!(scaled.contains("= unchanged: srv"), "{scaled}");
    zpm.wait_marked(2);
}

#[test]
fn god_refuses_a_bad_apply_and_starts_nothing() {
    let zpm = Zpm::new();
    zpm.ok(&["ping"]);
    let mut bad = good_spec(&zpm, "bad");
    bad["argv"] = json!([]);
    let good = good_spec(&zpm, "good");
    let error = rpc(
        &zpm,
        "app.apply",
        &json!({"apps": [good.clone(), bad], "prune": true}),
    )
    .expect_err("God should refuse");
    assert_eq!(error.code, ErrorCode::BadParams, "{error}");
    assert!(error.message.contains("invalid argv"), "{error}");

    let error = rpc(&zpm, "app.apply", &json!({"apps": [good.clone(), good]}))
        .expect_err("God should refuse");
    assert_eq!(error.code, ErrorCode::BadParams, "{error}");
    assert!(error.message.contains("declared twice"), "{error}");

    let error = rpc(&zpm, "app.apply", &json!({"apps": []})).expect_err("God should refuse");
    assert_eq!(error.code, ErrorCode::BadParams, "{error}");
    assert!(zpm.ls().is_empty());
    assert!(zpm.marked().is_empty());
}

#[test]
fn apply_wants_an_ecosystem_file() {
    let zpm = Zpm::new();
    let error = zpm.fails(&["apply", "nope.json"]);
    assert!(
        error.contains("zpm apply takes an existing ecosystem file"),
        "{error}"
    );
}
