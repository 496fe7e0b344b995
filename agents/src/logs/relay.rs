//! Requests asked of this logs agent through God (`logs.query`), for callers that cannot
//! reach `logs.sock` (a CLI on another host, or talking to God through the tunnel). Each
//! is made on `logs.sock` itself, so it is checked and served exactly as a local one, and
//! its reply goes back to God as `logs.answer`.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use zpm_proto::method::logs;
use zpm_proto::{LogsAnswer, LogsQuery};
use zpm_rpc::{CallError, Client, ClientOptions, ErrorCode, RpcError};

/// Queries answered at once; more are refused (God bounds them too).
const MAX_IN_FLIGHT: usize = 8;
/// Below God's own wait, so God hears of a slow answer rather than timing out blind.
const QUERY_TIMEOUT: Duration = Duration::from_secs(12);

#[derive(Clone)]
pub struct Relay {
    god: Arc<Client>,
    local: Arc<Client>,
    slots: Arc<Semaphore>,
}

impl Relay {
    /// Answers through `god`, asking `logs_endpoint` (this agent's own `logs.sock`).
    pub fn new(god: Arc<Client>, logs_endpoint: &str) -> Self {
        let options = ClientOptions {
            version: zpm_proto::PROTOCOL_VERSION,
            ..ClientOptions::default()
        };
        Self {
            god,
            local: Arc::new(Client::with_options(logs_endpoint, options)),
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// Answers `query` in the background.
    pub fn answer(&self, query: LogsQuery) {
        let relay = self.clone();
        tokio::spawn(async move {
            let id = query.query;
            let outcome = relay.ask_locally(query).await;
            let answer = match outcome {
                Ok(result) => LogsAnswer {
                    query: id,
                    result: Some(result),
                    error: None,
                },
                Err(error) => LogsAnswer {
                    query: id,
                    result: None,
                    error: Some(error),
                },
            };
            if let Err(e) = relay.god.notify_method::<logs::Answer>(&answer) {
                tracing::warn!(query = id, error = %e, "cannot send a logs answer to God");
            }
        });
    }

    async fn ask_locally(&self, query: LogsQuery) -> Result<zpm_rpc::Value, RpcError> {
        if !logs::ASKABLE.contains(&query.method.as_str()) {
            return Err(RpcError::new(
                ErrorCode::UnknownMethod,
                format!("{:?} cannot be asked of a logs agent", query.method),
            ));
        }
        let Ok(_slot) = self.slots.try_acquire() else {
            return Err(RpcError::new(
                ErrorCode::Unavailable,
                "the logs agent is answering too many requests; try again",
            ));
        };
        match self
            .local
            .call_value(&query.method, &query.params, QUERY_TIMEOUT)
            .await
        {
            Ok(value) => Ok(value),
            Err(CallError::Remote(e)) => Err(e),
            Err(e) => Err(RpcError::new(ErrorCode::Unavailable, e.to_string())),
        }
    }
}
