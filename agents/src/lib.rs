//! zpm's agents: the spawner (owns the children), logs and metrics. Each runs as its own
//! process and dials in to God (see DESIGN.md). The spawner arrives with issue
//! "2. God, spawner and CLI"; logs and metrics after it.
