//! Starting zpm's own processes (`zpm daemon`, `zpm agent ROLE`): one recipe for the CLI,
//! God and the spawner's keeper of God.

use crate::home::Home;
use std::path::Path;
use std::process::{Command, Stdio};

/// Environment every zpm daemon runs with (apps never see it: the spawner starts them
/// with exactly their spec's environment).
pub const DAEMON_ENV: [(&str, &str); 2] = [
    // Blocks of 128 KiB and more are mmapped and go back to the system when freed. glibc
    // otherwise raises this threshold as large blocks are freed and keeps them in its
    // heap, so a burst of large messages from a peer would stay in a daemon's RSS.
    ("MALLOC_MMAP_THRESHOLD_", "131072"),
    // Few arenas: the daemons are small, mostly idle, and run a handful of threads.
    ("MALLOC_ARENA_MAX", "2"),
];

/// `EXE ARGS…` with `ZPM_HOME` and [`DAEMON_ENV`] set, stdin closed, and stdout and stderr
/// appended to `log`.
pub fn daemon_command(
    exe: &Path,
    home: &Home,
    args: &[&str],
    log: &Path,
) -> std::io::Result<Command> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let err = out.try_clone()?;
    let mut command = Command::new(exe);
    command
        .args(args)
        .env("ZPM_HOME", home.root())
        .envs(DAEMON_ENV)
        // A daemon takes where God is and its key from the home, never from the shell of
        // whoever launched it.
        .env_remove("ZPM_CONNECT")
        .env_remove("ZPM_KEY_FILE")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    Ok(command)
}
