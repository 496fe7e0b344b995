//! God: zpm's thin coordinator. Holds the desired state, the agent registry and the
//! routing of commands to agents; it never forks apps or reads their output (see
//! DESIGN.md). Its implementation arrives with issue "2. God, spawner and CLI".
