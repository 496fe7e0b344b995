//! What one run of an app is given beyond its spec: per-instance variables, its shared
//! sockets at fd 3… with systemd's socket-activation variables, Node's IPC channel, the
//! sd_notify socket, and the Node preload module in cluster mode.

use crate::spawner::serve::Listener;
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::Path;
use zpm_proto::{AppSpec, ListenAddr};

/// systemd's `SD_LISTEN_FDS_START`.
const FIRST_FD: i32 = 3;

/// Sets `LISTEN_PID` to the program's own pid, which is known only in the child: the
/// shell's `$$` is the pid the program keeps after `exec`.
const SET_LISTEN_PID: &str = "export LISTEN_PID=$$; exec \"$0\" \"$@\"";

/// What the run is given besides its spec.
#[derive(Default)]
pub struct Extras<'a> {
    pub listeners: &'a [Listener],
    /// The child's end of the Node IPC channel.
    pub ipc: Option<OwnedFd>,
    pub notify_socket: Option<&'a Path>,
    /// The Node preload module (cluster mode).
    pub node_preload: Option<&'a Path>,
}

/// The program, arguments, environment and inherited descriptors of one run.
pub struct Plan {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// (descriptor, number it has in the child).
    pub fds: Vec<(OwnedFd, i32)>,
}

/// True if `argv` runs Node, which gets PM2's IPC channel.
pub use zpm_proto::runs_node as is_node;

pub fn plan(spec: &AppSpec, id: u32, instance: u32, extras: Extras<'_>) -> std::io::Result<Plan> {
    let mut env = spec.env.clone();
    instance_env(&mut env, spec, id, instance);
    let mut argv = spec.argv.clone();
    let mut fds = Vec::new();
    let mut next = FIRST_FD;
    if !extras.listeners.is_empty() {
        for listener in extras.listeners {
            fds.push((listener.fd.try_clone()?, next));
            next += 1;
        }
        env.insert("LISTEN_FDS".into(), extras.listeners.len().to_string());
        env.insert("LISTEN_FDNAMES".into(), fd_names(extras.listeners));
    }
    if let Some(ipc) = extras.ipc {
        fds.push((ipc, next));
        env.insert("NODE_CHANNEL_FD".into(), next.to_string());
        env.insert("NODE_CHANNEL_SERIALIZATION_MODE".into(), "json".into());
    }
    if let Some(path) = extras.notify_socket {
        env.insert("NOTIFY_SOCKET".into(), path.display().to_string());
        if let Some(ms) = spec.ready.watchdog_ms {
            env.insert("WATCHDOG_USEC".into(), (ms * 1000).to_string());
        }
    }
    if let Some(preload) = extras.node_preload {
        node_cluster(&mut argv, &mut env, spec, extras.listeners, preload);
    }
    // Sockets are for this process, not for what it forks (systemd's rule; the Node
    // preload module applies it to processes `child_process.fork` starts).
    if !extras.listeners.is_empty() || extras.node_preload.is_some() {
        env.remove("LISTEN_PID");
        argv = shell_setting_listen_pid(argv);
    }
    Ok(Plan { argv, env, fds })
}

/// `ZPM_*`, `instance_var` (PM2's `NODE_APP_INSTANCE` by default) and `increment_var`.
fn instance_env(env: &mut BTreeMap<String, String>, spec: &AppSpec, id: u32, instance: u32) {
    env.insert("ZPM_ID".into(), id.to_string());
    env.insert("ZPM_NAME".into(), spec.name.clone());
    env.insert("ZPM_INSTANCE".into(), instance.to_string());
    let instance_var = spec.instance_var.as_deref().unwrap_or("NODE_APP_INSTANCE");
    env.insert(instance_var.into(), instance.to_string());
    if let Some(name) = &spec.increment_var
        && let Some(base) = env.get(name).and_then(|v| v.trim().parse::<u64>().ok())
    {
        env.insert(name.clone(), (base + u64::from(instance)).to_string());
    }
}

/// `LISTEN_FDNAMES`: the addresses, `:`-separated as systemd wants, so `:` inside an
/// address becomes `_`.
fn fd_names(listeners: &[Listener]) -> String {
    listeners
        .iter()
        .map(|l| l.addr.to_string().replace(':', "_"))
        .collect::<Vec<_>>()
        .join(":")
}

fn shell_setting_listen_pid(argv: Vec<String>) -> Vec<String> {
    let mut wrapped = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        SET_LISTEN_PID.to_owned(),
    ];
    wrapped.extend(argv);
    wrapped
}

/// `node --require PRELOAD …`, and what the preload module reads: the sockets held
/// (`ZPM_LISTEN`) and whether it may ask for more (`ZPM_CLUSTER`).
fn node_cluster(
    argv: &mut Vec<String>,
    env: &mut BTreeMap<String, String>,
    spec: &AppSpec,
    listeners: &[Listener],
    preload: &Path,
) {
    let after_node = 1 + argv
        .iter()
        .position(|a| is_node(std::slice::from_ref(a)))
        .unwrap_or(0);
    argv.splice(
        after_node..after_node,
        ["--require".to_owned(), preload.display().to_string()],
    );
    let held: Vec<serde_json::Value> = listeners
        .iter()
        .zip(FIRST_FD..)
        .map(|(l, fd)| match &l.addr {
            ListenAddr::Unix(path) => serde_json::json!({"fd": fd, "path": path}),
            ListenAddr::AnyTcp { port } => {
                serde_json::json!({"fd": fd, "host": "::", "port": port})
            }
            ListenAddr::Tcp(addr) => {
                serde_json::json!({"fd": fd, "host": addr.ip().to_string(), "port": addr.port()})
            }
        })
        .collect();
    env.insert(
        "ZPM_LISTEN".into(),
        serde_json::Value::Array(held).to_string(),
    );
    if spec.exec_mode == zpm_proto::ready::ExecMode::Cluster {
        env.insert("ZPM_CLUSTER".into(), "1".into());
    }
}
