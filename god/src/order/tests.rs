use super::*;
use zpm_proto::health::HealthStatus;

fn app(name: &str, deps: &[(&str, Condition)]) -> AppSpec {
    let mut spec = AppSpec::new(name, vec!["sleep".into(), "9".into()], "/");
    spec.depends_on = deps
        .iter()
        .map(|(name, condition)| Dependency {
            name: (*name).into(),
            condition: *condition,
        })
        .collect();
    spec
}

fn set(table: &mut Table, id: u32, status: ProcessStatus, exit_code: Option<i32>) {
    let p = table.get_mut(id).unwrap();
    p.report.status = status;
    p.report.pid = Some(100 + id);
    p.report.exit_code = exit_code;
}

#[test]
fn unknown_names_and_cycles_are_refused_with_the_names() {
    let table = Table::default();
    let unknown = check_start(&table, &[app("api", &[("db", Condition::Ready)])]).unwrap_err();
    assert!(
        unknown.message.contains("\"api\" depends on \"db\""),
        "{unknown:?}"
    );
    let apps = [
        app("a", &[("b", Condition::Started)]),
        app("b", &[("c", Condition::Started)]),
        app("c", &[("a", Condition::Started)]),
        app("d", &[]),
    ];
    let cycle = check_start(&table, &apps).unwrap_err();
    assert!(cycle.message.contains("a → b → c → a"), "{cycle:?}");
    let fine = [app("api", &[("db", Condition::Ready)]), app("db", &[])];
    check_start(&table, &fine).unwrap();
}

#[test]
fn a_dependency_may_be_an_app_god_already_runs_but_healthy_needs_a_check() {
    let mut table = Table::default();
    table.add(&app("db", &[]), "h", 0, 1);
    check_start(&table, &[app("api", &[("db", Condition::Ready)])]).unwrap();
    let err = check_start(&table, &[app("api", &[("db", Condition::Healthy)])]).unwrap_err();
    assert!(err.message.contains("no health check"), "{err:?}");
}

#[test]
fn waves_start_dependencies_first_and_stop_dependents_first() {
    let mut table = Table::default();
    let api = table.add(&app("api", &[("db", Condition::Ready)]), "h", 0, 2);
    let db = table.add(&app("db", &[]), "h", 0, 1);
    let web = table.add(&app("web", &[("api", Condition::Started)]), "h", 0, 1);
    let solo = table.add(&app("solo", &[]), "h", 0, 1);
    let all: Vec<u32> = [&api, &db, &web, &solo]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    let waves = start_waves(&table, &all);
    assert_eq!(waves.len(), 3);
    assert!(waves[0].contains(&db[0]) && waves[0].contains(&solo[0]));
    assert_eq!(waves[1], api);
    assert_eq!(waves[2], web);
    let stop = stop_waves(&table, &all);
    assert_eq!(stop[0], web);
    // Only the targets are ordered: api alone is one wave.
    assert_eq!(start_waves(&table, &api), vec![api]);
}

#[test]
fn conditions_follow_the_instances_reports() {
    let mut table = Table::default();
    let db = table.add(&app("db", &[]), "h", 0, 2);
    let dep = |condition| Dependency {
        name: "db".into(),
        condition,
    };
    assert!(matches!(
        progress(&table, "default", &dep(Condition::Started)),
        Progress::Waiting(_)
    ));
    set(&mut table, db[0], ProcessStatus::Launching, None);
    set(&mut table, db[1], ProcessStatus::Online, None);
    assert_eq!(
        progress(&table, "default", &dep(Condition::Started)),
        Progress::Met
    );
    assert!(matches!(
        progress(&table, "default", &dep(Condition::Ready)),
        Progress::Waiting(_)
    ));
    set(&mut table, db[0], ProcessStatus::Online, None);
    assert_eq!(
        progress(&table, "default", &dep(Condition::Ready)),
        Progress::Met
    );
    assert!(matches!(
        progress(&table, "default", &dep(Condition::Healthy)),
        Progress::Waiting(_)
    ));
    for id in &db {
        table.get_mut(*id).unwrap().report.health = Some(HealthStatus {
            passed: 1,
            ..HealthStatus::default()
        });
    }
    assert_eq!(
        progress(&table, "default", &dep(Condition::Healthy)),
        Progress::Met
    );
    set(&mut table, db[0], ProcessStatus::Stopped, Some(0));
    set(&mut table, db[1], ProcessStatus::Stopped, Some(3));
    assert_eq!(
        progress(&table, "default", &dep(Condition::Completed)),
        Progress::Met
    );
    let failed = progress(&table, "default", &dep(Condition::CompletedSuccessfully));
    assert_eq!(failed, Progress::Failed("db exited with code 3".into()));
}

#[test]
fn a_stopped_dependency_is_found_transitively_for_with_deps() {
    let mut table = Table::default();
    let db = table.add(&app("db", &[]), "h", 0, 1);
    let cache = table.add(&app("cache", &[("db", Condition::Ready)]), "h", 0, 1);
    let api = table.add(&app("api", &[("cache", Condition::Ready)]), "h", 0, 1);
    for id in [db[0], cache[0], api[0]] {
        set(&mut table, id, ProcessStatus::Stopped, None);
        table.get_mut(id).unwrap().desired = Desired::Stopped;
    }
    let found: Vec<u32> = failed_dependencies(&table, &api)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(found, vec![cache[0], db[0]]);
    set(&mut table, cache[0], ProcessStatus::Online, None);
    assert!(failed_dependencies(&table, &api).is_empty());
}
