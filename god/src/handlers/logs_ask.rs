//! `logs.ask`: a CLI that cannot reach a host's `logs.sock` (the host is another machine,
//! or the CLI talks to God through the tunnel) asks God, which carries the request to that
//! host's logs agent (`logs.query`) and returns its `logs.answer`. Log data still stays on
//! its host until someone asks for it.

use crate::state::God;
use std::sync::Arc;
use std::time::Duration;
use zpm_proto::method::logs;
use zpm_proto::{LogsAnswer, LogsAsk, LogsQuery, Role};
use zpm_rpc::{Ctx, ErrorCode, RpcError};

/// Longer than the agent's own wait on `logs.sock`, so its answer (even an error) arrives.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

pub async fn ask(god: Arc<God>, ask: LogsAsk, ctx: Ctx) -> Result<zpm_rpc::Value, RpcError> {
    zpm_proto::validate::host_name("host", &ask.host).map_err(super::bad_params)?;
    if !logs::ASKABLE.contains(&ask.method.as_str()) {
        return Err(RpcError::bad_params(format!(
            "method: {:?} cannot be asked of a logs agent (only {})",
            ask.method,
            logs::ASKABLE.join(", ")
        )));
    }
    let Some(peer) = god.registry().peer_of(Role::Logs.as_str(), &ask.host) else {
        return Err(RpcError::new(
            ErrorCode::Unavailable,
            format!("no logs agent of host {:?} is connected", ask.host),
        ));
    };
    let (query, answer) = god.queries().open(&ask.host)?;
    let push = LogsQuery {
        query,
        method: ask.method,
        params: ask.params,
    };
    let pushed = ctx.pusher.push_method::<logs::Query>(&peer, &push).await;
    let outcome = match pushed {
        Ok(()) => tokio::time::timeout(ANSWER_WITHIN, answer).await,
        Err(e) => {
            god.queries().close(query);
            return Err(e);
        }
    };
    god.queries().close(query);
    match outcome {
        Ok(Ok(result)) => result,
        _ => Err(RpcError::new(
            ErrorCode::Timeout,
            format!(
                "the logs agent of host {:?} did not answer within {ANSWER_WITHIN:?}",
                ask.host
            ),
        )),
    }
}

/// A logs agent's answer: handed to the waiting `ask` if it came from the host asked.
pub async fn answer(god: Arc<God>, answer: LogsAnswer, ctx: Ctx) -> Result<(), RpcError> {
    if let Some(sender) = god.heard_from(&ctx.peer, None)
        && sender.role == Role::Logs.as_str()
    {
        god.queries().answer(answer, &sender.host);
    }
    Ok(())
}
