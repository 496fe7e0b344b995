//! Where things live under `$ZPM_HOME`. Pure path arithmetic: creating the directory
//! (mode 0700) is the binary's job.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn ipc(&self, name: &str) -> String {
        format!("ipc://{}", self.root.join(name).display())
    }

    /// God's rpc ROUTER.
    pub fn rpc_endpoint(&self) -> String {
        self.ipc("rpc.sock")
    }

    /// The path behind [`Home::rpc_endpoint`].
    pub fn rpc_socket(&self) -> PathBuf {
        self.root.join("rpc.sock")
    }

    /// God's bus ROUTER.
    pub fn bus_endpoint(&self) -> String {
        self.ipc("bus.sock")
    }

    /// The path behind [`Home::bus_endpoint`].
    pub fn bus_socket(&self) -> PathBuf {
        self.root.join("bus.sock")
    }

    /// The spawner's host-local endpoint (`logs.fetch`).
    pub fn spawner_endpoint(&self) -> String {
        self.ipc("spawner.sock")
    }

    /// The logs agent's host-local endpoint (`logs.tail`, `logs.flush`, `logs.reopen`).
    pub fn logs_endpoint(&self) -> String {
        self.ipc("logs.sock")
    }

    /// Where apps' log files go unless they name their own.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// What the logs agent has written, to resume from after a restart.
    pub fn logs_ledger(&self) -> PathBuf {
        self.root.join("logs-ledger.json")
    }

    /// God's persisted desired state.
    pub fn state_file(&self) -> PathBuf {
        self.root.join("state.json")
    }

    /// What `zpm save` wrote and `zpm resurrect` reads.
    pub fn dump_file(&self) -> PathBuf {
        self.root.join("dump.json")
    }

    /// The pre-shared key of the tunnel between hosts (`zpm keygen`).
    pub fn key_file(&self) -> PathBuf {
        self.root.join("key")
    }

    /// Present when this home belongs to a God on another host (see `joined`).
    pub fn joined_file(&self) -> PathBuf {
        self.root.join("remote.toml")
    }

    /// Optional settings (see `config`).
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// The spawner's record of the processes it runs (pid, start time, group).
    /// The Node preload module the spawner gives cluster-mode Node apps.
    pub fn node_preload(&self) -> PathBuf {
        self.root.join("node-preload.js")
    }

    /// Where the spawner binds apps' sd_notify sockets (`NOTIFY_SOCKET`), one per run.
    pub fn notify_dir(&self) -> PathBuf {
        self.root.join("notify")
    }

    pub fn spawner_record(&self) -> PathBuf {
        self.root.join("spawner-record.json")
    }

    pub fn daemon_log(&self) -> PathBuf {
        self.root.join("daemon.log")
    }

    /// Lock file held for as long as a God runs on this home.
    pub fn god_lock(&self) -> PathBuf {
        self.root.join("god.lock")
    }

    /// Lock file held by the agent of `role` on this home.
    pub fn agent_lock(&self, role: &str) -> PathBuf {
        self.root.join(format!("agent-{role}.lock"))
    }

    pub fn agent_log(&self, role: &str) -> PathBuf {
        self.root.join(format!("agent-{role}.log"))
    }
}
