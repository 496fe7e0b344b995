//! `logs.sock`: the logs agent's host-local endpoint. `logs.tail` reads the files (never
//! the writer's state, so it never waits on the pull loop); `logs.flush` and `logs.reopen`
//! are handed to the pull loop, which owns the files, and answered once done.

use super::{Now, Writer, tail};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use zpm_proto::logfiles::{LogTarget, TailLines, TailRequest};
use zpm_proto::method::logs;
use zpm_rpc::{BindError, ErrorCode, RpcError, Server};

/// At most this many lines per app and stream.
pub const MAX_TAIL_LINES: u32 = 10_000;
/// A tail reply stops adding lines past this many bytes (rpc messages are capped).
const MAX_TAIL_BYTES: usize = 4 * 1024 * 1024;
/// At most this many app ids in one request (more than any host runs).
pub const MAX_IDS: usize = 10_000;
/// How long a flush or reopen may wait for the pull loop.
const CONTROL_WAIT: Duration = Duration::from_secs(10);

/// What the pull loop is asked to do to the files.
pub(super) enum Control {
    Flush(Vec<u32>, oneshot::Sender<Result<(), String>>),
    Reopen(oneshot::Sender<Result<(), String>>),
}

impl Control {
    pub(super) fn apply(self, writer: &mut Writer) {
        match self {
            Self::Flush(ids, done) => {
                let result = writer
                    .truncate(&ids, Now::current())
                    .and_then(|()| writer.save())
                    .map_err(|e| e.to_string());
                let _ = done.send(result);
            }
            Self::Reopen(done) => {
                writer.reopen_all();
                let _ = done.send(Ok(()));
            }
        }
    }
}

pub(super) async fn serve(
    endpoint: &str,
    targets: Arc<RwLock<Vec<LogTarget>>>,
    control: mpsc::Sender<Control>,
) -> Result<Server, BindError> {
    let flush = control.clone();
    Server::builder()
        .version(zpm_proto::PROTOCOL_VERSION)
        .handle::<logs::Tail, _, _>(move |request, _| {
            let targets = Arc::clone(&targets);
            async move { tail_of(&targets, request).await }
        })
        .handle::<logs::Flush, _, _>(move |request, _| {
            let control = flush.clone();
            async move {
                few_ids(&request.ids)?;
                ask(&control, |done| Control::Flush(request.ids, done)).await
            }
        })
        .handle::<logs::Reopen, _, _>(move |_, _| {
            let control = control.clone();
            async move { ask(&control, Control::Reopen).await }
        })
        .bind(&[endpoint])
        .await
}

fn few_ids(ids: &[u32]) -> Result<(), RpcError> {
    if ids.len() > MAX_IDS {
        return Err(RpcError::bad_params(format!(
            "ids: {} of them, at most {MAX_IDS}",
            ids.len()
        )));
    }
    Ok(())
}

async fn ask(
    control: &mpsc::Sender<Control>,
    make: impl FnOnce(oneshot::Sender<Result<(), String>>) -> Control,
) -> Result<(), RpcError> {
    let (done, outcome) = oneshot::channel();
    let unavailable = |m: &str| RpcError::new(ErrorCode::Unavailable, m.to_owned());
    control
        .try_send(make(done))
        .map_err(|_| unavailable("the logs agent is busy; try again"))?;
    match tokio::time::timeout(CONTROL_WAIT, outcome).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(RpcError::internal(e)),
        _ => Err(unavailable("the logs agent did not answer in time")),
    }
}

async fn tail_of(
    targets: &RwLock<Vec<LogTarget>>,
    request: TailRequest,
) -> Result<Vec<TailLines>, RpcError> {
    few_ids(&request.ids)?;
    if request.lines > MAX_TAIL_LINES {
        return Err(RpcError::bad_params(format!(
            "lines: {} is more than {MAX_TAIL_LINES}",
            request.lines
        )));
    }
    let chosen: Vec<LogTarget> = {
        let targets = targets.read().unwrap_or_else(PoisonError::into_inner);
        let wanted: std::collections::BTreeSet<u32> = request.ids.iter().copied().collect();
        targets
            .iter()
            .filter(|t| wanted.contains(&t.id))
            .cloned()
            .collect()
    };
    let (lines, stream) = (request.lines as usize, request.stream);
    tokio::task::spawn_blocking(move || read_tails(&chosen, stream, lines))
        .await
        .map_err(|e| RpcError::internal(format!("reading log files: {e}")))
}

/// Each target's tail, per stream (or its combined file), within [`MAX_TAIL_BYTES`].
fn read_tails(
    chosen: &[LogTarget],
    stream: Option<zpm_proto::LogStream>,
    lines: usize,
) -> Vec<TailLines> {
    use zpm_proto::LogStream;
    let mut budget = MAX_TAIL_BYTES;
    let mut out = Vec::new();
    for target in chosen {
        // Both streams: the app's combined file when it has one, else each file.
        let streams: Vec<Option<LogStream>> = match (stream, &target.log_file) {
            (Some(s), _) => vec![Some(s)],
            (None, Some(_)) => vec![None],
            (None, None) => vec![Some(LogStream::Out), Some(LogStream::Err)],
        };
        for &stream in &streams {
            let found = tail(target, stream, lines).unwrap_or_default();
            let mut kept: Vec<serde_bytes::ByteBuf> = Vec::new();
            for line in found.into_iter().rev() {
                if line.len() > budget {
                    break;
                }
                budget -= line.len();
                kept.push(serde_bytes::ByteBuf::from(line));
            }
            kept.reverse();
            out.push(TailLines {
                id: target.id,
                name: target.name.clone(),
                stream,
                lines: kept,
            });
        }
    }
    out
}
