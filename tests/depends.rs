//! `depends_on` (issue 8): start order with conditions, `ls`/`describe` show what an app
//! waits for, reverse stop, cycles and unknown names refused before anything starts, a
//! stopped dependency refused or brought along with `--with-deps`; and `--update-env`.

use crate::harness::{Zpm, poll, status};
use serde_json::{Value, json};
use std::process::Stdio;

/// A service that appends `NAME up` to `order` when it starts and `NAME down` when told to
/// stop, becomes ready (prints `ready`) after `delay` seconds, and first checks that every
/// file in `needs` exists (else it records `NAME early`).
fn service(zpm: &Zpm, name: &str, delay: &str, needs: &[&str]) -> Value {
    let order = zpm.path("order");
    let checks = needs
        .iter()
        .map(|f| format!("[ -f {f} ] || echo '{name} early' >> {}", order.display()))
        .chain([String::new()])
        .collect::<Vec<_>>()
        .join("\n");
    let script = zpm.script(
        &format!("{name}.sh"),
        &format!(
            "#!/bin/sh\n{checks}echo '{name} up' >> {o}\ntrap \"echo '{name} down' >> {o}; exit 0\" TERM\n\
             sleep {delay}\ntouch {name}.ready\necho ready\nwhile true; do sleep 0.2; done\n",
            o = order.display()
        ),
    );
    json!({
        "name": name,
        "script": script,
        "args": [zpm.marker.clone()],
        "ready_log": "^ready$",
    })
}

fn write_file(zpm: &Zpm, apps: Vec<Value>) -> String {
    let path = zpm.path("eco.json");
    std::fs::write(&path, json!({ "apps": apps }).to_string()).unwrap();
    path.display().to_string()
}

fn order(zpm: &Zpm) -> Vec<String> {
    std::fs::read_to_string(zpm.path("order"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A `zpm start FILE` the test does not wait for; ended (by pid) if the test fails first.
struct Background(Option<std::process::Child>);

impl Background {
    fn wait(mut self) -> std::process::Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `zpm start FILE`, not waited for: the test looks at God meanwhile.
fn start_in_background(zpm: &Zpm, file: &str) -> Background {
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("zpm"))
        .args(["start", file])
        .env("ZPM_HOME", zpm.home())
        .current_dir(zpm.home())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Background(Some(child))
}

fn row<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {rows:#?}"))
}

#[test]
fn api_starts_only_once_db_is_ready_and_ls_shows_what_it_waits_for() {
    let zpm = Zpm::new();
    let mut api = service(&zpm, "api", "0", &["db.ready"]);
    api["depends_on"] = json!(["db"]);
    let mut web = service(&zpm, "web", "0", &["db.ready"]);
    web["depends_on"] = json!({"api": "started"});
    let solo = service(&zpm, "solo", "0", &[]);
    let file = write_file(&zpm, vec![web, api, service(&zpm, "db", "1", &[]), solo]);
    let child = start_in_background(&zpm, &file);
    let rows = zpm.wait_ls("api waiting for db while db starts", |rows| {
        rows.iter()
            .any(|r| r["name"] == "api" && status(r) == "launching" && !r["waiting"].is_null())
    });
    assert_eq!(row(&rows, "api")["waiting"], json!(["db (ready)"]));
    let described = zpm.ok(&["describe", "web"]);
    assert!(described.contains("api (started)"), "{described}");
    let out = child.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = zpm.wait_ls("all four online", |rows| {
        rows.len() == 4 && rows.iter().all(|r| status(r) == "online")
    });
    assert!(rows.iter().all(|r| r.get("waiting").is_none()), "{rows:#?}");
    let log = order(&zpm);
    assert!(!log.iter().any(|l| l.ends_with("early")), "{log:?}");
    let db = log.iter().position(|l| l == "db up").unwrap();
    let api = log.iter().position(|l| l == "api up").unwrap();
    assert!(db < api, "{log:?}");
    let described = zpm.ok(&["describe", "api"]);
    assert!(described.contains("db (ready)"), "{described}");

    zpm.ok(&["stop", "all"]);
    let log = poll("every app recorded its stop", || {
        let log = order(&zpm);
        (log.iter().filter(|l| l.ends_with("down")).count() == 4).then_some(log)
    });
    let at = |line: &str| log.iter().position(|l| l == line).unwrap();
    assert!(at("web down") < at("api down"), "{log:?}");
    assert!(at("api down") < at("db down"), "{log:?}");
}

#[test]
fn cycles_and_unknown_names_are_refused_before_anything_starts() {
    let zpm = Zpm::new();
    let mut a = service(&zpm, "a", "0", &[]);
    a["depends_on"] = json!(["b"]);
    let mut b = service(&zpm, "b", "0", &[]);
    b["depends_on"] = json!({"c": "started"});
    let mut c = service(&zpm, "c", "0", &[]);
    c["depends_on"] = json!(["a"]);
    let file = write_file(&zpm, vec![a, b, c, service(&zpm, "d", "0", &[])]);
    let error = zpm.fails(&["start", &file]);
    assert!(
        error.contains("depends_on forms a cycle: a → b → c → a"),
        "{error}"
    );
    assert!(zpm.ls().is_empty());

    let mut api = service(&zpm, "api", "0", &[]);
    api["depends_on"] = json!(["dbx"]);
    let file = write_file(&zpm, vec![api]);
    let error = zpm.fails(&["start", &file]);
    assert!(
        error.contains("app \"api\" depends on \"dbx\", which is neither in this start"),
        "{error}"
    );
    assert!(zpm.ls().is_empty());
    assert!(zpm.marked().is_empty(), "nothing ran");
}

#[test]
fn a_stopped_dependency_is_named_or_started_first_with_with_deps() {
    let zpm = Zpm::new();
    let mut api = service(&zpm, "api", "0", &[]);
    api["depends_on"] = json!(["db"]);
    let file = write_file(&zpm, vec![api, service(&zpm, "db", "0", &[])]);
    zpm.ok(&["start", &file]);
    zpm.ok(&["stop", "all"]);
    let error = zpm.fails(&["start", "api"]);
    assert!(
        error.contains(
            "api depends on db (ready), and db is stopped: start it first, or add --with-deps"
        ),
        "{error}"
    );
    assert!(zpm.ls().iter().all(|r| status(r) == "stopped"));
    std::fs::remove_file(zpm.path("order")).unwrap();
    zpm.ok(&["start", "api", "--with-deps"]);
    let rows = zpm.wait_ls("both online", |rows| {
        rows.iter().all(|r| status(r) == "online")
    });
    assert_eq!(rows.len(), 2);
    let log = order(&zpm);
    assert_eq!(log.first().map(String::as_str), Some("db up"), "{log:?}");
}

#[test]
fn a_failed_job_or_a_dependency_past_its_timeout_starts_nothing() {
    let zpm = Zpm::new();
    let migrate = zpm.script("migrate.sh", "#!/bin/sh\nexit 4\n");
    let mut api = service(&zpm, "api", "0", &[]);
    api["depends_on"] = json!({"migrate": "completed_successfully"});
    let job = json!({"name": "migrate", "script": migrate, "args": [zpm.marker.clone()],
                     "autorestart": false});
    let file = write_file(&zpm, vec![api.clone(), job]);
    let error = zpm.fails(&["start", &file]);
    assert!(
        error.contains(
            "api was not started: migrate (completed_successfully): migrate exited with code 4"
        ),
        "{error}"
    );
    assert!(error.contains("nothing was started"), "{error}");
    assert!(zpm.ls().is_empty());

    std::fs::write(&migrate, "#!/bin/sh\nexit 0\n").unwrap();
    zpm.ok(&["start", &file]);
    let rows = zpm.wait_ls("api online after the job", |rows| {
        status(row(rows, "api")) == "online"
    });
    assert_eq!(status(row(&rows, "migrate")), "stopped");

    let mut late = service(&zpm, "late", "0", &[]);
    late["depends_on"] = json!(["slow"]);
    late["depends_timeout"] = "300ms".into();
    let file = write_file(&zpm, vec![late, service(&zpm, "slow", "30", &[])]);
    let error = zpm.fails(&["start", &file]);
    assert!(
        error.contains("late was not started: it waited 300ms (depends_timeout) for slow (ready)"),
        "{error}"
    );
    let names: Vec<Value> = zpm.ls().iter().map(|r| r["name"].clone()).collect();
    assert_eq!(
        names,
        vec![json!("api"), json!("migrate")],
        "slow was removed too"
    );
}

/// Records `L1 L2 L3` and whether `GONE` is set, each time it starts.
fn env_app(zpm: &Zpm) -> std::path::PathBuf {
    zpm.script(
        "envapp.sh",
        "#!/bin/sh\necho \"$L1 $L2 $L3 ${GONE:-unset}\" >> env-runs\nexec sleep 1000\n",
    )
}

#[test]
fn update_env_reads_shell_and_files_again_and_removes_a_deleted_variable() {
    let zpm = Zpm::new();
    let app = env_app(&zpm);
    std::fs::write(zpm.path("app.env"), "L2=file\nGONE=here\n").unwrap();
    let start = zpm
        .cmd()
        .env("L1", "shell1")
        .args([
            "start",
            app.to_str().unwrap(),
            "--name",
            "envapp",
            "--env-file",
            "app.env",
        ])
        .args(["--env-var", "L3=var", "--", &zpm.marker])
        .output()
        .unwrap();
    assert!(
        start.status.success(),
        "{}",
        String::from_utf8_lossy(&start.stderr)
    );
    let runs = |n: usize| {
        poll(&format!("{n} runs recorded"), || {
            let text = std::fs::read_to_string(zpm.path("env-runs")).ok()?;
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            (lines.len() == n).then_some(lines)
        })
    };
    assert_eq!(runs(1)[0], "shell1 file var here");
    std::fs::write(zpm.path("app.env"), "L2=file2\n").unwrap();
    let restart = |extra: &[&str]| {
        let out = zpm
            .cmd()
            .env("L1", "shell2")
            .args(["restart", "envapp"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    restart(&[]);
    assert_eq!(
        runs(2)[1],
        "shell1 file var here",
        "without --update-env: as started"
    );
    restart(&["--update-env"]);
    assert_eq!(
        runs(3)[2],
        "shell2 file2 var unset",
        "shell and file read again, --env-var kept, the deleted variable gone"
    );
    let described = zpm.ok(&["describe", "envapp"]);
    assert!(
        described.contains("kept as started; `restart --update-env` reads"),
        "{described}"
    );
    let history = zpm.json(&["describe", "envapp"]);
    assert_eq!(
        history[0]["restarts"][1]["reason"]["kind"], "user",
        "{history}"
    );
}

#[test]
fn reload_update_env_rereads_the_ecosystem_file() {
    let zpm = Zpm::new();
    let app = env_app(&zpm);
    let write = |env: Value| {
        let eco = json!({"apps": [{"name": "envapp", "script": app, "args": [zpm.marker.clone()],
                                   "env": env}]});
        std::fs::write(zpm.path("eco.json"), eco.to_string()).unwrap();
    };
    write(json!({"L2": "one", "GONE": "x"}));
    zpm.ok(&["start", "eco.json"]);
    write(json!({"L2": "two"}));
    zpm.ok(&["reload", "envapp", "--update-env"]);
    let lines = poll("two runs", || {
        let text = std::fs::read_to_string(zpm.path("env-runs")).ok()?;
        (text.lines().count() == 2).then_some(text)
    });
    assert_eq!(lines.lines().nth(1), Some(" two  unset"), "{lines}");
}

#[test]
fn an_app_stopped_or_deleted_while_it_waits_is_not_started() {
    let zpm = Zpm::new();
    let mut api = service(&zpm, "api", "0", &[]);
    api["depends_on"] = json!(["db"]);
    let mut web = service(&zpm, "web", "0", &[]);
    web["depends_on"] = json!(["db"]);
    let file = write_file(&zpm, vec![api, web, service(&zpm, "db", "2", &[])]);
    let child = start_in_background(&zpm, &file);
    zpm.wait_ls("api and web waiting", |rows| {
        rows.iter().filter(|r| !r["waiting"].is_null()).count() == 2
    });
    zpm.ok(&["stop", "api"]);
    zpm.ok(&["delete", "web"]);
    let out = child.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = zpm.wait_ls("db online", |rows| status(row(rows, "db")) == "online");
    assert_eq!(rows.len(), 2, "web is gone: {rows:#?}");
    assert_eq!(status(row(&rows, "api")), "stopped");
    assert!(row(&rows, "api")["pid"].is_null());
    assert_eq!(
        order(&zpm),
        vec!["db up".to_owned()],
        "neither api nor web ran"
    );
}

#[test]
fn restart_all_runs_the_job_again_and_waits_for_it_before_its_dependents() {
    let zpm = Zpm::new();
    let log_file = zpm.path("order");
    let migrate = zpm.script(
        "migrate.sh",
        &format!(
            "#!/bin/sh\nsleep 0.3\necho 'migrate done' >> {}\n",
            log_file.display()
        ),
    );
    let job = json!({"name": "migrate", "script": migrate, "args": [zpm.marker.clone()],
                     "autorestart": false});
    let mut api = service(&zpm, "api", "0", &[]);
    api["depends_on"] = json!({"migrate": "completed_successfully"});
    let file = write_file(&zpm, vec![api, job]);
    zpm.ok(&["start", &file]);
    assert_eq!(order(&zpm), vec!["migrate done", "api up"]);
    zpm.ok(&["restart", "all"]);
    let log = poll("the second round", || {
        let log = order(&zpm);
        (log.len() >= 5).then_some(log)
    });
    assert_eq!(
        log[2..],
        ["migrate done", "api down", "api up"],
        "the job ran again first, and api was restarted once it had completed: {log:?}"
    );
}

#[test]
fn a_god_killed_while_an_app_waits_resumes_the_wait() {
    let zpm = Zpm::new();
    let mut api = service(&zpm, "api", "0", &["db.ready"]);
    api["depends_on"] = json!(["db"]);
    let file = write_file(&zpm, vec![api, service(&zpm, "db", "2", &[])]);
    let _start = start_in_background(&zpm, &file);
    // db spawned: the start was saved (God persists before it spawns anything).
    zpm.wait_ls("api waiting, db started", |rows| {
        rows.iter()
            .any(|r| r["name"] == "api" && !r["waiting"].is_null())
            && rows
                .iter()
                .any(|r| r["name"] == "db" && !r["pid"].is_null())
    });
    let god = crate::crash::the_god(&zpm);
    crate::crash::sigkill(god);
    crate::crash::wait_new_god(&zpm, god);
    let rows = zpm.wait_ls("both online under the new God", |rows| {
        rows.len() == 2 && rows.iter().all(|r| status(r) == "online")
    });
    assert!(rows.iter().all(|r| r.get("waiting").is_none()), "{rows:#?}");
    assert_eq!(
        order(&zpm),
        vec!["db up".to_owned(), "api up".to_owned()],
        "api started once, after db was ready"
    );
    assert_eq!(zpm.marked().len(), 2, "one process each");
    // The CLI's call died with its God: the guard ends it.
}
