//! `app.apply`: an ecosystem file's apps made the truth, declaratively. God compares them
//! with what it runs and answers with a plan (what each app needs, and which settings
//! changed), carried out unless `dry_run`.

use crate::{AppSpec, ProcessInfo};
use serde::{Deserialize, Serialize};

/// `app.apply`'s params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyApps {
    /// Every app of the file, resolved by the CLI as `app.start` takes them.
    pub apps: Vec<AppSpec>,
    /// Also delete the apps of the file's namespaces that the file no longer names.
    #[serde(default)]
    pub prune: bool,
    /// Only compute the plan.
    #[serde(default)]
    pub dry_run: bool,
}

/// What one app needs to match the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyAction {
    /// Not running: started.
    Start,
    /// Changed, and its runs can overlap (sockets held by the spawner): each instance
    /// replaced by a ready new run before the old one stops.
    Reload,
    /// Changed, and two runs cannot overlap: each instance stopped, then run with the new
    /// settings.
    Restart,
    /// Only its number of instances changed: instances added or removed.
    Scale,
    /// Not in the file (`prune`): stopped and forgotten.
    Delete,
    Unchanged,
}

/// One changed setting: `key` is a spec field (`argv`, `ready.timeout_ms`) or `env.NAME`;
/// the values as text, `None` when unset, `****` for a secret-looking variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub key: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// One app's line of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedApp {
    pub name: String,
    pub namespace: String,
    pub action: ApplyAction,
    /// Instances it has after the apply (for `delete`: the ones deleted).
    pub instances: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

/// `app.apply`'s result: the plan in file order (deletions last), and, once carried out,
/// the rows of the file's apps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyPlan {
    pub apps: Vec<PlannedApp>,
    /// False for a dry run, and when there was nothing to do.
    pub executed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<ProcessInfo>,
}

impl ApplyPlan {
    /// True if every app is unchanged.
    pub fn nothing_to_do(&self) -> bool {
        self.apps
            .iter()
            .all(|app| app.action == ApplyAction::Unchanged)
    }
}
