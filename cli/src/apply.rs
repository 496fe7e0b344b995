//! `zpm apply FILE`: the file read as `zpm start FILE` reads it, its apps sent to God,
//! which answers with the plan (God computes it from what it runs). The plan is printed
//! first, then carried out; an unchanged file costs one call and changes nothing.

use crate::cli::ApplyArgs;
use crate::connect::ensure_daemon;
use crate::ecosystem::{StartOptions, is_ecosystem_file};
use crate::output::{print_json, print_line, printable};
use crate::verbs::{VERB_TIMEOUT, call, call_within, reload_timeout, resolve_new, show_after};
use anyhow::{Context as _, bail};
use zpm_host::home::Home;
use zpm_proto::apply::{ApplyAction, ApplyApps, ApplyPlan, Change, PlannedApp};
use zpm_proto::method::app;
use zpm_proto::validate;

/// Longest value shown in a change (the JSON plan has them whole).
const SHOWN_VALUE_CHARS: usize = 60;

pub async fn run(home: &Home, args: ApplyArgs) -> anyhow::Result<()> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    if !is_ecosystem_file(&args.file, &cwd) {
        bail!(
            "zpm apply takes an existing ecosystem file (*.json, *.yaml, *.yml, *.toml, or \
             ecosystem*.js / *.config.js); {:?} is not one",
            args.file
        );
    }
    let options = StartOptions {
        env_name: args.env_name.clone(),
        ..StartOptions::default()
    };
    let apps = resolve_new(&args.file, &options, &cwd)?;
    validate::apply_apps(&apps)?;
    let (client, _) = ensure_daemon(home).await?;
    let mut params = ApplyApps {
        apps,
        prune: args.prune,
        dry_run: true,
    };
    let plan = call::<app::Apply>(&client, &params).await?;
    if args.dry_run || plan.nothing_to_do() {
        return if args.json {
            print_json(&plan)
        } else {
            print_line(&preview(&plan, args.dry_run))
        };
    }
    if !args.json {
        print_line(&plan_text(&plan.apps))?;
    }
    params.dry_run = false;
    // Every app may be replaced (each up to its ready and kill timeouts), and some
    // started or deleted besides.
    let timeout = reload_timeout(params.apps.iter().map(|s| (s, s.instances)), 1) + VERB_TIMEOUT;
    let done = call_within::<app::Apply>(&client, &params, timeout).await?;
    if args.json {
        return print_json(&done);
    }
    if done.apps != plan.apps {
        print_line("the apps changed meanwhile; what was done instead:")?;
        print_line(&plan_text(&done.apps))?;
    }
    show_after(&client, &done.rows, false).await
}

/// A plan that is not carried out: a dry run's, or one with nothing to do.
fn preview(plan: &ApplyPlan, dry_run: bool) -> String {
    if plan.nothing_to_do() {
        let n = plan.apps.len();
        return format!(
            "nothing to do: {n} app{} unchanged",
            if n == 1 { "" } else { "s" }
        );
    }
    let text = plan_text(&plan.apps);
    if dry_run {
        format!("{text}\ndry run: nothing was changed")
    } else {
        text
    }
}

/// One line per app that changes, in plan order, then one line naming the unchanged.
fn plan_text(apps: &[PlannedApp]) -> String {
    let mut lines: Vec<String> = apps
        .iter()
        .filter(|a| a.action != ApplyAction::Unchanged)
        .map(app_line)
        .collect();
    let unchanged: Vec<String> = apps
        .iter()
        .filter(|a| a.action == ApplyAction::Unchanged)
        .map(label)
        .collect();
    if !unchanged.is_empty() {
        lines.push(format!("= unchanged: {}", unchanged.join(", ")));
    }
    lines.join("\n")
}

fn app_line(app: &PlannedApp) -> String {
    let count = || {
        let n = app.instances;
        format!("({n} instance{})", if n == 1 { "" } else { "s" })
    };
    let changes = || {
        app.changes
            .iter()
            .map(change_text)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let name = label(app);
    match app.action {
        ApplyAction::Start => format!("+ start {name} {}", count()),
        ApplyAction::Delete => format!("- delete {name} {}", count()),
        ApplyAction::Reload => format!("~ reload {name}: {}", changes()),
        ApplyAction::Restart => format!("~ restart {name}: {}", changes()),
        ApplyAction::Scale => format!("~ scale {name}: {}", changes()),
        ApplyAction::Unchanged => format!("= unchanged: {name}"),
    }
}

/// The app's name, with its namespace unless it is the default one.
fn label(app: &PlannedApp) -> String {
    let name = printable(&app.name);
    if app.namespace == zpm_proto::AppSpec::DEFAULT_NAMESPACE {
        name
    } else {
        format!("{name} [{}]", printable(&app.namespace))
    }
}

fn change_text(change: &Change) -> String {
    let shown = |value: &Option<String>| match value {
        None => "(unset)".to_owned(),
        Some(v) if v.chars().count() > SHOWN_VALUE_CHARS => {
            let head: String = v.chars().take(SHOWN_VALUE_CHARS).collect();
            format!("{}…", printable(&head))
        }
        Some(v) => printable(v),
    };
    format!(
        "{} {} → {}",
        printable(&change.key),
        shown(&change.old),
        shown(&change.new)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(name: &str, action: ApplyAction, changes: Vec<Change>) -> PlannedApp {
        PlannedApp {
            name: name.into(),
            namespace: "default".into(),
            action,
            instances: 2,
            changes,
        }
    }

    fn change(key: &str, old: Option<&str>, new: Option<&str>) -> Change {
        Change {
            key: key.into(),
            old: old.map(Into::into),
            new: new.map(Into::into),
        }
    }

    #[test]
    fn the_plan_reads_one_line_per_change_then_the_unchanged() {
        let mut old = planned("old", ApplyAction::Delete, Vec::new());
        old.namespace = "jobs".into();
        let apps = [
            planned("web", ApplyAction::Start, Vec::new()),
            planned(
                "api",
                ApplyAction::Reload,
                vec![
                    change("instances", Some("1"), Some("2")),
                    change("env.PORT", Some("3000"), Some("3001")),
                    change("env.MODE", None, Some("a\nb")),
                ],
            ),
            planned("a", ApplyAction::Unchanged, Vec::new()),
            planned("b", ApplyAction::Unchanged, Vec::new()),
            old,
        ];
        assert_eq!(
            plan_text(&apps),
            "+ start web (2 instances)\n\
             ~ reload api: instances 1 → 2; env.PORT 3000 → 3001; env.MODE (unset) → a\\nb\n\
             - delete old [jobs] (2 instances)\n\
             = unchanged: a, b"
        );
    }

    #[test]
    fn nothing_to_do_says_so() {
        let plan = ApplyPlan {
            apps: vec![
                planned("a", ApplyAction::Unchanged, Vec::new()),
                planned("b", ApplyAction::Unchanged, Vec::new()),
            ],
            executed: false,
            rows: Vec::new(),
        };
        assert_eq!(preview(&plan, false), "nothing to do: 2 apps unchanged");
        assert_eq!(preview(&plan, true), "nothing to do: 2 apps unchanged");
    }

    #[test]
    fn long_values_are_cut() {
        let long = "x".repeat(100);
        let text = change_text(&change("argv", Some(&long), None));
        assert_eq!(text, format!("argv {}… → (unset)", "x".repeat(60)));
    }
}
