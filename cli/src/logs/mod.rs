//! `zpm logs`, `zpm flush` and `zpm reload-logs`. Apps are resolved through God
//! (`app.describe`, which also names each instance's files); lines and file operations come
//! from the host's logs agent on `logs.sock`; live lines from the bus.

mod admin;
mod lines;
mod print;
mod stream;

pub use admin::{flush, reload};

use crate::cli::LogsArgs;
use crate::connect::ensure_daemon;
use crate::output::colour_wanted;
use anyhow::{Context as _, bail};
use lines::{Sink as _, Who};
use print::{Printer, Style};
use std::io::{self, Write};
use std::time::Duration;
use zpm_host::home::Home;
use zpm_proto::commands::{AppDescription, Target};
use zpm_proto::logfiles::{DISCARD, TailRequest};
use zpm_proto::method::{app, logs};
use zpm_proto::{LogStream, validate};
use zpm_rpc::{CallError, Client, ClientOptions, Method};

/// Long enough for a logs agent that is just being launched with a fresh daemon.
const LOGS_TIMEOUT: Duration = Duration::from_secs(15);

pub async fn run(home: &Home, args: LogsArgs) -> anyhow::Result<()> {
    if let Some(pattern) = &args.timestamp {
        validate::date_format("--timestamp", pattern)?;
    }
    let (god, _) = ensure_daemon(home).await?;
    let apps = describe(&god, &args.target).await?;
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
        tail(home, &apps, &args, &mut printer).await?;
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

/// Calls the host's logs agent on `logs.sock`.
async fn call_logs<M: Method>(home: &Home, params: &M::Params) -> anyhow::Result<M::Output> {
    let options = ClientOptions {
        version: zpm_proto::PROTOCOL_VERSION,
        connect_attempt: Duration::from_millis(100),
        ..ClientOptions::default()
    };
    let endpoint = home.logs_endpoint();
    let client = Client::with_options(&endpoint, options);
    match client.call_method::<M>(params, LOGS_TIMEOUT).await {
        Ok(output) => Ok(output),
        Err(CallError::Remote(e)) => bail!("the logs agent: {}", e.message),
        Err(e) => Err(e).with_context(|| {
            format!(
                "calling {} on {endpoint} (is the logs agent running? see `zpm agents`)",
                M::NAME
            )
        }),
    }
}

/// One log file to show: whose, which stream.
struct File<'a> {
    id: u32,
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
    home: &Home,
    apps: &[AppDescription],
    args: &LogsArgs,
    printer: &mut Printer<W>,
) -> anyhow::Result<()> {
    let stream = args.stream();
    let files = files(apps, stream);
    if args.lines == 0 || files.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<u32> = files.iter().map(|f| f.id).collect();
    ids.dedup();
    let request = TailRequest {
        ids,
        lines: args.lines,
        stream,
    };
    let tails = call_logs::<logs::Tail>(home, &request).await?;
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
