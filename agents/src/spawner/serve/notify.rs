//! systemd's sd_notify protocol: the app (or any process of its group) sends datagrams of
//! `KEY=VALUE` lines to `NOTIFY_SOCKET`. Datagrams from other processes, and oversized
//! ones, are dropped: the socket lives in `$ZPM_HOME` (0700), but an app is a peer we do
//! not trust either.

use super::links::RunSignal;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, UnixCredentials, recvmsg, setsockopt, sockopt,
};
use std::io::IoSliceMut;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use tokio::io::Interest;
use tokio::net::UnixDatagram;
use tokio::sync::mpsc;

/// systemd's own limit for one notification.
const MAX_DATAGRAM: usize = 4096;
/// Longest `STATUS=` kept.
const MAX_STATUS: usize = 256;

/// Binds `path` (replacing a leftover file) for one run.
pub fn bind(path: &Path) -> std::io::Result<UnixDatagram> {
    if path.as_os_str().len() > zpm_proto::MAX_UNIX_PATH_BYTES {
        return Err(std::io::Error::other(format!(
            "the notify socket path {} is longer than 107 bytes: use a shorter ZPM_HOME",
            path.display()
        )));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let socket = UnixDatagram::bind(path)?;
    setsockopt(&socket, sockopt::PassCred, &true)?;
    Ok(socket)
}

/// Reads notifications of the run whose group is `pgid` until the socket errs or the
/// receiver is gone; removes the socket file when it ends.
pub async fn read(
    socket: UnixDatagram,
    path: PathBuf,
    pgid: u32,
    signals: mpsc::Sender<RunSignal>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = socket
            .async_io(Interest::READABLE, || receive(&socket, &mut buf))
            .await;
        match received {
            Ok(Some((len, sender))) if from_group(sender, pgid) => {
                for signal in parse(&buf[..len]) {
                    if signals.send(signal).await.is_err() {
                        let _ = std::fs::remove_file(&path);
                        return;
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "notify socket read failed");
                let _ = std::fs::remove_file(&path);
                return;
            }
        }
    }
}

/// One datagram and its sender's pid; `None` for one truncated or without credentials.
fn receive(socket: &UnixDatagram, buf: &mut [u8]) -> std::io::Result<Option<(usize, i32)>> {
    let mut space = nix::cmsg_space!(UnixCredentials);
    let mut iov = [IoSliceMut::new(buf)];
    let message = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(std::io::Error::from)?;
    if message.flags.contains(MsgFlags::MSG_TRUNC) {
        return Ok(None);
    }
    let pid = message
        .cmsgs()
        .map_err(std::io::Error::from)?
        .find_map(|c| match c {
            ControlMessageOwned::ScmCredentials(creds) => Some(creds.pid()),
            _ => None,
        });
    Ok(pid.map(|pid| (message.bytes, pid)))
}

fn from_group(sender: i32, group: u32) -> bool {
    let Ok(sender) = u32::try_from(sender) else {
        return false;
    };
    sender == group || zpm_host::procfs::stat(sender).is_ok_and(|s| s.pgrp == group)
}

/// The signals of one datagram, in order.
pub fn parse(datagram: &[u8]) -> Vec<RunSignal> {
    let text = String::from_utf8_lossy(datagram);
    text.lines()
        .filter_map(|line| match line.split_once('=')? {
            ("READY", "1") => Some(RunSignal::Ready("sd_notify READY=1")),
            ("WATCHDOG", "1") => Some(RunSignal::Watchdog),
            ("STOPPING", "1") => Some(RunSignal::Stopping),
            ("STATUS", status) => Some(RunSignal::Status(
                status
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_STATUS)
                    .collect(),
            )),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_become_signals_and_the_rest_is_ignored() {
        let signals = parse(
            b"READY=1\nSTATUS=warming \x1b[31mup\nMAINPID=4\nWATCHDOG=1\nSTOPPING=1\nREADY=0",
        );
        assert_eq!(
            signals,
            vec![
                RunSignal::Ready("sd_notify READY=1"),
                RunSignal::Status("warming [31mup".into()),
                RunSignal::Watchdog,
                RunSignal::Stopping,
            ]
        );
        let long = format!("STATUS={}", "x".repeat(5000));
        assert!(
            matches!(&parse(long.as_bytes())[0], RunSignal::Status(s) if s.len() == MAX_STATUS)
        );
    }
}
