//! `zpm flush [TARGET…]` (empty apps' log files) and `zpm reload-logs` (reopen every log
//! file, after an external logrotate moved them): one call each to the logs agent.

use super::describe;
use super::reach::Reach;
use crate::cli::FlushArgs;
use crate::output::{print_json, print_line, printable};
use std::collections::BTreeMap;
use zpm_host::home::Home;
use zpm_proto::commands::AppDescription;
use zpm_proto::logfiles::{DISCARD, FlushRequest};
use zpm_proto::method::logs;
use zpm_rpc::NoParams;

pub async fn flush(home: &Home, args: FlushArgs, remote: bool) -> anyhow::Result<()> {
    let reach = Reach::open(home, remote).await?;
    let apps = describe(&reach.god, &args.target).await?;
    // No target: every app each logs agent writes for (an empty list), not only those
    // God listed a moment ago.
    let mut by_host: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    if args.target.is_empty() {
        for host in reach.hosts().await? {
            by_host.insert(host, Vec::new());
        }
    } else {
        for app in &apps {
            by_host
                .entry(app.info.host.clone())
                .or_default()
                .push(app.info.id);
        }
    }
    for (host, ids) in by_host {
        reach
            .call::<logs::Flush>(&host, &FlushRequest { ids })
            .await?;
    }
    let files = files(&apps);
    if args.json {
        let ids: Vec<u32> = apps.iter().map(|a| a.info.id).collect();
        return print_json(&serde_json::json!({ "ids": ids, "files": files }));
    }
    if files.is_empty() {
        return print_line("zpm: no log files to flush");
    }
    let lines: Vec<String> = files
        .iter()
        .map(|f| format!("zpm: flushed {}", printable(f)))
        .collect();
    print_line(&lines.join("\n"))
}

/// Every file written for `apps` (out, error, combined), each once, none discarded.
fn files(apps: &[AppDescription]) -> Vec<&str> {
    let mut files: Vec<&str> = Vec::new();
    for target in apps.iter().filter_map(|a| a.logs.as_ref()) {
        let paths = [&target.out_file, &target.error_file]
            .into_iter()
            .chain(target.log_file.as_ref());
        for path in paths {
            if path != DISCARD && !files.contains(&path.as_str()) {
                files.push(path);
            }
        }
    }
    files
}

pub async fn reload(home: &Home, json: bool, remote: bool) -> anyhow::Result<()> {
    // The daemon launches the logs agent; without it there is nothing to reopen.
    let reach = Reach::open(home, remote).await?;
    // God's own host always (its logs agent may still be starting), and every other.
    let mut hosts = reach.hosts().await?;
    if !hosts.contains(&reach.god_host) {
        hosts.push(reach.god_host.clone());
    }
    for host in hosts {
        reach.call::<logs::Reopen>(&host, &NoParams {}).await?;
    }
    if json {
        print_json(&serde_json::json!({ "reopened": true }))
    } else {
        print_line("zpm: log files reopened")
    }
}
