//! The `logs.fetch` rpc endpoint (normally `ipc://$ZPM_HOME/spawner.sock`), and a typed
//! client call for consumers.

use super::LogHub;
use std::sync::Arc;
use std::time::Duration;
use zpm_proto::method::logs::Fetch;
use zpm_proto::{LogsFetch, LogsFetched};
use zpm_rpc::{BindError, CallError, Client, Ctx, ErrorCode, RpcError, Server};

/// Binds a [`Server`] on `endpoint` serving [`Fetch`] from `hub`. The fetching peer is known by its routing identity, so only
/// the peer that claimed the consumer role acknowledges; a second claimant gets `conflict`.
/// Dropping the server stops serving.
pub async fn serve_logs(hub: Arc<LogHub>, endpoint: &str) -> Result<Server, BindError> {
    Server::builder()
        .version(zpm_proto::PROTOCOL_VERSION)
        .handle::<Fetch, _, _>(move |request: LogsFetch, ctx: Ctx| {
            let hub = Arc::clone(&hub);
            async move {
                hub.fetch(request, &ctx.peer)
                    .await
                    .map_err(|e| RpcError::new(ErrorCode::Conflict, e.to_string()))
            }
        })
        .bind(&[endpoint])
        .await
}

/// Calls [`Fetch`] through `client`. Give `timeout` some margin over
/// `request.wait_ms`: the server holds the call that long when there is nothing new.
pub async fn fetch_logs(
    client: &Client,
    request: &LogsFetch,
    timeout: Duration,
) -> Result<LogsFetched, CallError> {
    client.call_method::<Fetch>(request, timeout).await
}
