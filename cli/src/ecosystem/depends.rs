//! `depends_on`: a name, a list of names (each `ready`), or a map of name → condition
//! (`started`, `ready`, `healthy`, `completed`, `completed_successfully`; docker compose's
//! `service_*` spellings and `{condition: …}` accepted too).

use super::fields::Field;
use serde_json::Value;
use zpm_proto::depends::{Condition, Dependency};

pub(super) fn depends_on(field: &Field<'_>) -> anyhow::Result<Vec<Dependency>> {
    let expected = "a name, a list of names, or a map of name to started, ready, healthy, \
                    completed or completed_successfully";
    let ready = |name: &str| Dependency {
        name: name.to_owned(),
        condition: Condition::Ready,
    };
    match field.value {
        Value::String(name) => Ok(vec![ready(name)]),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(ready)
                    .ok_or_else(|| field.error(expected))
            })
            .collect(),
        Value::Object(map) => map
            .iter()
            .map(|(name, condition)| {
                let condition = condition_of(condition).ok_or_else(|| field.error(expected))?;
                Ok(Dependency {
                    name: name.clone(),
                    condition,
                })
            })
            .collect(),
        _ => Err(field.error(expected)),
    }
}

/// `"ready"`, `"service_healthy"`, `{condition: "healthy"}`, or null (ready).
fn condition_of(value: &Value) -> Option<Condition> {
    match value {
        Value::Null => Some(Condition::Ready),
        Value::String(word) => {
            let word = word.strip_prefix("service_").unwrap_or(word);
            Condition::parse(word)
        }
        Value::Object(map) => condition_of(map.get("condition")?),
        _ => None,
    }
}
