//! `zpm logs` streaming: a bus subscriber on `log:out` / `log:err`, events of the chosen
//! apps assembled into lines and printed in batches until Ctrl-C or a closed stdout.
//! One thread (the CLI's runtime is single-threaded), so a flood costs at most one core.

use super::lines::Assembler;
use super::print::Printer;
use anyhow::Context as _;
use std::collections::HashSet;
use std::io::{self, Write};
use std::time::Duration;
use tokio::time::Instant;
use zpm_bus::{DroppedReport, RawEvent, Subscriber, SubscriberOptions};
use zpm_host::home::Home;
use zpm_proto::{LogEvent, LogStream, topics};

/// Events God may send ahead. The subscriber returns credit by count, every quarter
/// window, while the publisher also caps the bytes in flight (8 MiB) and a log event
/// carries up to 256 KiB: with a quarter window of more than 32 large events, the bytes
/// run out first, no credit ever goes back, and the stream stops for good (seen with
/// 4096 under a flood). A quarter of 64 is 16 events, at most 4 MiB.
const CREDIT: u32 = 64;
/// Events taken without waiting before the batch is flushed to stdout.
const BATCH: usize = 256;
/// Longest wait for an event before looking at held lines and stdout again.
const IDLE: Duration = Duration::from_millis(250);

/// Subscribes before the last lines are read, so no line falls between the two.
pub async fn subscribe(home: &Home, stream: Option<LogStream>) -> anyhow::Result<Subscriber> {
    let prefixes = match stream {
        Some(LogStream::Out) => vec![topics::LOG_OUT],
        Some(LogStream::Err) => vec![topics::LOG_ERR],
        None => vec![topics::LOG_OUT, topics::LOG_ERR],
    };
    let options = SubscriberOptions {
        prefixes: prefixes.into_iter().map(String::from).collect(),
        credit: CREDIT,
        version: zpm_proto::PROTOCOL_VERSION,
        ..SubscriberOptions::default()
    };
    let endpoint = home.bus_endpoint();
    Subscriber::connect(&endpoint, options)
        .await
        .with_context(|| format!("subscribing to {endpoint}"))
}

/// Which apps to show: `None` = every app, also those started later.
pub type Chosen = Option<HashSet<u32>>;

/// Prints live lines until Ctrl-C (Ok) or an error (a closed stdout is one).
pub async fn follow<W: Write>(
    mut subscriber: Subscriber,
    chosen: &Chosen,
    printer: &mut Printer<W>,
) -> anyhow::Result<()> {
    let mut lines = Assembler::default();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let wait = lines.next_due().map_or(IDLE, |due| {
            due.saturating_duration_since(std::time::Instant::now())
                .min(IDLE)
        });
        let first = tokio::select! {
            _ = &mut ctrl_c => break,
            event = subscriber.recv_raw(wait) => event.context("reading the bus")?,
        };
        match first {
            Some(event) => {
                printer.stamp_now();
                show(&event, chosen, &mut lines, printer)?;
                drain(&mut subscriber, chosen, &mut lines, printer).await?;
            }
            None if stdout_closed() => return Ok(()),
            None => {}
        }
        lines.expire(std::time::Instant::now(), printer)?;
        printer.flush()?;
    }
    lines.finish(printer)?;
    printer.flush()?;
    Ok(())
}

/// Takes what is already there (up to [`BATCH`] events) without waiting.
async fn drain<W: Write>(
    subscriber: &mut Subscriber,
    chosen: &Chosen,
    lines: &mut Assembler,
    printer: &mut Printer<W>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    for _ in 0..BATCH {
        let Some(event) = subscriber
            .recv_raw(Duration::ZERO)
            .await
            .context("reading the bus")?
        else {
            break;
        };
        show(&event, chosen, lines, printer)?;
        if started.elapsed() > IDLE {
            break;
        }
    }
    Ok(())
}

/// One bus event: lines of a chosen app, or a drop report.
fn show<W: Write>(
    event: &RawEvent,
    chosen: &Chosen,
    lines: &mut Assembler,
    printer: &mut Printer<W>,
) -> io::Result<()> {
    match event.topic_str() {
        topics::LOG_OUT | topics::LOG_ERR => {
            // A malformed body from a buggy peer is skipped, not fatal.
            let Ok(log) = event.decode::<LogEvent>() else {
                return Ok(());
            };
            if chosen.as_ref().is_none_or(|ids| ids.contains(&log.data.id)) {
                lines.accept(log.data, std::time::Instant::now(), printer)?;
            }
            Ok(())
        }
        topics::BUS_DROPPED => match event.decode::<DroppedReport>() {
            Ok(report) if report.data.dropped > 0 => printer.dropped_events(report.data.dropped),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// True once nobody reads our stdout any more (`zpm logs | head` after head exited): a
/// pipe whose reader is gone polls as an error. Checked while idle, since a write would
/// only fail (EPIPE) at the next line, which may never come.
fn stdout_closed() -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd as _;
    let stdout = io::stdout();
    let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::empty())];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP)),
        Err(_) => false,
    }
}
