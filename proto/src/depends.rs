//! `depends_on`: what an app waits for before it starts, checked by God (see
//! god/src/order.rs), like docker compose's `depends_on` conditions.

use serde::{Deserialize, Serialize};

/// How long an app waits for its dependencies when its spec names no `depends_timeout`.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;

/// When a dependency counts as met; every instance of it must meet it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Its process runs (launched, ready or not).
    Started,
    /// `online`: ready, for an app with readiness; launched for the others.
    #[default]
    Ready,
    /// Online and its health check has passed since it became ready.
    Healthy,
    /// It ran and ended by itself (any exit code): a job such as a migration.
    Completed,
    /// It ran and exited with code 0.
    CompletedSuccessfully,
}

impl Condition {
    pub const ALL: [Condition; 5] = [
        Self::Started,
        Self::Ready,
        Self::Healthy,
        Self::Completed,
        Self::CompletedSuccessfully,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Ready => "ready",
            Self::Healthy => "healthy",
            Self::Completed => "completed",
            Self::CompletedSuccessfully => "completed_successfully",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == word)
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `depends_on`: an app of the same namespace, and when it counts as met.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dependency {
    pub name: String,
    #[serde(default)]
    pub condition: Condition,
}

impl std::fmt::Display for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.condition)
    }
}
