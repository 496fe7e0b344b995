//! Which settings of an app differ between the spec God runs and the file's: every spec
//! field (nested ones as `ready.timeout_ms`) and the file's own environment variables.

use super::super::apps::looks_secret;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use zpm_proto::AppSpec;
use zpm_proto::apply::Change;

/// Fields compared on their own terms, not as plain values: identity (`name`,
/// `namespace`), `instances` (compared with the instances running, which `zpm scale` may
/// have changed), the environment (below), and `env_origin` (where the environment was
/// read, not what it is).
const NOT_COMPARED: [&str; 6] = [
    "name",
    "namespace",
    "instances",
    "env",
    "env_explicit",
    "env_origin",
];

/// The changes from `old` to `new`, fields first, then variables; secret-looking variable
/// values masked. Only variables that the file or command line set (`env_explicit`, of
/// either spec) count: the rest were inherited from whichever shell ran the CLI, and a
/// different shell is no change to the declared apps.
pub(super) fn changes(old: &AppSpec, new: &AppSpec) -> Vec<Change> {
    let mut changes = differing(&fields(old), &fields(new));
    let names: BTreeSet<&String> = old.env_explicit.iter().chain(&new.env_explicit).collect();
    for name in names {
        let (was, is) = (old.env.get(name), new.env.get(name));
        if was != is {
            let shown = |value: Option<&String>| {
                value.map(|v| {
                    if looks_secret(name) {
                        "****".to_owned()
                    } else {
                        v.clone()
                    }
                })
            };
            changes.push(Change {
                key: format!("env.{name}"),
                old: shown(was),
                new: shown(is),
            });
        }
    }
    changes
}

/// `spec`'s compared fields as dotted keys → text (strings as they are, anything else as
/// JSON). Fields at their default are absent, as on the wire.
fn fields(spec: &AppSpec) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // An AppSpec always serializes to an object (its maps have string keys).
    if let Ok(Value::Object(map)) = serde_json::to_value(spec) {
        for (key, value) in map {
            if !NOT_COMPARED.contains(&key.as_str()) {
                flatten(&key, value, &mut out);
            }
        }
    }
    // The spec leaves these out whole when at their default; written on their own they
    // show every field, so one changed field is not shown with its siblings as new.
    let nested = [
        ("ready", serde_json::to_value(&spec.ready)),
        ("health", serde_json::to_value(&spec.health)),
        ("watch", serde_json::to_value(&spec.watch)),
        ("logs", serde_json::to_value(&spec.logs)),
    ];
    for (key, value) in nested {
        if let Ok(value) = value {
            flatten(key, value, &mut out);
        }
    }
    out
}

fn flatten(key: &str, value: Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (inner, value) in map {
                flatten(&format!("{key}.{inner}"), value, out);
            }
        }
        Value::String(text) => {
            out.insert(key.to_owned(), text);
        }
        other => {
            out.insert(key.to_owned(), other.to_string());
        }
    }
}

fn differing(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<Change> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|key| old.get(*key) != new.get(*key))
        .map(|key| Change {
            key: key.clone(),
            old: old.get(key).cloned(),
            new: new.get(key).cloned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AppSpec {
        let mut spec = AppSpec::new("api", vec!["/bin/api".into()], "/srv");
        spec.env.insert("PORT".into(), "3000".into());
        spec.env.insert("API_TOKEN".into(), "s3cret-old".into());
        spec.env.insert("SHELL_ONLY".into(), "a".into());
        spec.env_explicit = vec!["PORT".into(), "API_TOKEN".into()];
        spec
    }

    fn keys(changes: &[Change]) -> Vec<&str> {
        changes.iter().map(|c| c.key.as_str()).collect()
    }

    #[test]
    fn the_same_spec_has_no_changes() {
        assert!(changes(&spec(), &spec()).is_empty());
    }

    #[test]
    fn inherited_variables_instances_and_origin_are_not_changes() {
        let mut new = spec();
        new.env.insert("SHELL_ONLY".into(), "b".into());
        new.env.insert("TERM".into(), "xterm".into());
        new.instances = 4;
        new.env_origin.file = Some("/elsewhere/ecosystem.json".into());
        assert!(changes(&spec(), &new).is_empty());
    }

    #[test]
    fn fields_and_file_variables_show_old_and_new_secrets_masked() {
        let mut new = spec();
        new.env.insert("PORT".into(), "3001".into());
        new.env.insert("API_TOKEN".into(), "s3cret-new".into());
        new.env.insert("MODE".into(), "fast".into());
        new.env_explicit.push("MODE".into());
        new.argv.push("--verbose".into());
        new.ready.timeout_ms = 9000;
        new.kill_signal = "SIGINT".into();
        let found = changes(&spec(), &new);
        assert_eq!(
            keys(&found),
            [
                "argv",
                "kill_signal",
                "ready.timeout_ms",
                "env.API_TOKEN",
                "env.MODE",
                "env.PORT"
            ]
        );
        let by_key = |key: &str| found.iter().find(|c| c.key == key).unwrap().clone();
        assert_eq!(
            by_key("argv").new.as_deref(),
            Some(r#"["/bin/api","--verbose"]"#)
        );
        assert_eq!(by_key("kill_signal").old.as_deref(), Some("SIGTERM"));
        let token = by_key("env.API_TOKEN");
        assert_eq!(
            (token.old.as_deref(), token.new.as_deref()),
            (Some("****"), Some("****"))
        );
        assert_eq!(by_key("env.MODE").old, None);
        assert_eq!(by_key("env.PORT").new.as_deref(), Some("3001"));
        let text = format!("{found:?}");
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn a_variable_dropped_from_the_file_is_unset() {
        let mut new = spec();
        new.env.remove("PORT");
        new.env_explicit.retain(|n| n != "PORT");
        let found = changes(&spec(), &new);
        assert_eq!(keys(&found), ["env.PORT"]);
        assert_eq!(found[0].new, None);
    }
}
