//! `zpm logs`, `zpm flush` and `zpm reload-logs`. Apps are resolved through God
//! (`app.describe`, which also names each instance's files and host); lines and file
//! operations come from each host's logs agent (`reach`); live lines from the bus.

mod admin;
mod lines;
mod print;
mod reach;
mod stream;

pub use admin::{flush, reload};

use crate::cli::LogsArgs;
use crate::output::colour_wanted;
use anyhow::Context as _;
use lines::{Sink as _, Who};
use print::{Printer, Style};
use reach::Reach;
use std::collections::BTreeMap;
use std::io::{self, Write};
use zpm_host::home::Home;
use zpm_proto::commands::{AppDescription, Target};
use zpm_proto::logfiles::{DISCARD, TailLines, TailRequest};
use zpm_proto::method::{app, logs};
use zpm_proto::{LogStream, validate};
use zpm_rpc::Client;

pub async fn run(home: &Home, args: LogsArgs, remote: bool) -> anyhow::Result<()> {
    if let Some(pattern) = &args.timestamp {
        validate::date_format("--timestamp", pattern)?;
    }
    let reach = Reach::open(home, remote).await?;
    let apps = describe(&reach.god, &args.target).await?;
    // Named apps: only their ids. No target: every app, also those started later.
    let chosen = (!args.target.is_empty()).then(|| apps.iter().map(|a| a.info.id).collect());
    let stream = args.stream();
    let subscriber = if args.nostream {
        None
    } else {
        Some(stream::subscribe(home, stream).await?)
    };
    let style = if args.json {
        Style::Json
    } else if args.raw {
        Style::Raw
    } else {
        Style::Prefixed {
            colour: colour_wanted(),
        }
    };
    let mut printer = Printer::new(io::stdout().lock(), style, args.timestamp.clone());
    for app in &apps {
        printer.widen(&app.info.name);
    }
    let shown = async {
        tail(&reach, &apps, &args, &mut printer).await?;
        printer.flush().context("writing to stdout")?;
        match subscriber {
            Some(subscriber) => stream::follow(subscriber, &chosen, &mut printer).await,
            None => Ok(()),
        }
    };
    quiet_when_unread(shown.await)
}

/// Nobody reads our output any more (`zpm logs | head`): that ends us, and is no error.
fn quiet_when_unread(result: anyhow::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(e)
            if e.chain().any(|cause| {
                cause
                    .downcast_ref::<io::Error>()
                    .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            }) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Every instance of the targets (all apps when none), as God resolves them.
async fn describe(god: &Client, targets: &[String]) -> anyhow::Result<Vec<AppDescription>> {
    let targets = if targets.is_empty() {
        vec!["all".to_owned()]
    } else {
        targets.to_vec()
    };
    crate::verbs::call::<app::Describe>(god, &Target::new(targets)).await
}

/// One log file to show: whose, which stream, on which host.
struct File<'a> {
    id: u32,
    host: &'a str,
    name: &'a str,
    stream: LogStream,
    path: &'a str,
}

/// The files of `apps` for `stream` (both when `None`), each once (merged instances
/// share theirs), without discarded ones.
fn files(apps: &[AppDescription], stream: Option<LogStream>) -> Vec<File<'_>> {
    let streams = match stream {
        Some(one) => vec![one],
        None => vec![LogStream::Out, LogStream::Err],
    };
    let mut files: Vec<File<'_>> = Vec::new();
    for app in apps {
        let Some(target) = &app.logs else { continue };
        for &stream in &streams {
            let path = match stream {
                LogStream::Out => target.out_file.as_str(),
                LogStream::Err => target.error_file.as_str(),
            };
            if path != DISCARD && !files.iter().any(|f| f.path == path) {
                files.push(File {
                    id: app.info.id,
                    host: &app.info.host,
                    name: &app.info.name,
                    stream,
                    path,
                });
            }
        }
    }
    files
}

/// PM2's start of `logs`: each file's header and its last lines.
async fn tail<W: Write>(
    reach: &Reach<'_>,
    apps: &[AppDescription],
    args: &LogsArgs,
    printer: &mut Printer<W>,
) -> anyhow::Result<()> {
    let stream = args.stream();
    let files = files(apps, stream);
    if args.lines == 0 || files.is_empty() {
        return Ok(());
    }
    let mut by_host: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for file in &files {
        let ids = by_host.entry(file.host).or_default();
        if !ids.contains(&file.id) {
            ids.push(file.id);
        }
    }
    let mut tails: Vec<TailLines> = Vec::new();
    for (host, ids) in by_host {
        let request = TailRequest {
            ids,
            lines: args.lines,
            stream,
        };
        tails.extend(reach.call::<logs::Tail>(host, &request).await?);
    }
    printer.stamp_now();
    for file in &files {
        printer.header(file.path, args.lines)?;
        let Some(found) = tails
            .iter()
            .find(|t| t.id == file.id && t.stream == Some(file.stream))
        else {
            continue;
        };
        let who = Who {
            id: file.id,
            name: file.name,
            stream: Some(file.stream),
        };
        for line in &found.lines {
            printer.line(who, line)?;
        }
    }
    Ok(())
}
