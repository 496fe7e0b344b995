use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Error codes carried in `{error: {code, message}}` replies. Encoded as snake_case strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request envelope is not a msgpack map with `v`, `id` and `method`.
    BadRequest,
    /// No handler is registered for `method`.
    UnknownMethod,
    /// `params` does not have the shape the method expects.
    BadParams,
    /// The envelope `v` is not the version this server speaks.
    Version,
    /// The thing named in `params` does not exist.
    NotFound,
    /// The request conflicts with the current state (already exists, already running).
    Conflict,
    /// The server cannot serve this now (shutting down, dependency missing).
    Unavailable,
    /// The handler gave up waiting on something.
    Timeout,
    /// A bug or an unexpected failure on the server side.
    Internal,
    /// The request was carried out and did not succeed: an app that cannot start, a
    /// reload rolled back. The message says why.
    Failed,
    /// A code this build does not know (sent by a newer peer).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownMethod => "unknown_method",
            Self::BadParams => "bad_params",
            Self::Version => "version",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Internal => "internal",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }
}

impl ErrorCode {
    const ALL: [Self; 10] = [
        Self::BadRequest,
        Self::UnknownMethod,
        Self::BadParams,
        Self::Version,
        Self::NotFound,
        Self::Conflict,
        Self::Unavailable,
        Self::Timeout,
        Self::Internal,
        Self::Failed,
    ];

    /// The code named by a wire string; [`ErrorCode::Unknown`] for codes of newer peers.
    pub fn from_wire(code: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == code)
            .unwrap_or(Self::Unknown)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error a handler returns and a client receives: the `error` map of a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RpcError {
    pub code: ErrorCode,
    pub message: String,
}

impl RpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn bad_params(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadParams, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

/// Why a client call produced no result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The server answered with an error reply.
    #[error("{0}")]
    Remote(#[from] RpcError),
    /// No reply within the deadline; the server may or may not have run the request.
    #[error("no reply to {method} from {endpoint} within {timeout:?}")]
    Timeout {
        method: String,
        endpoint: String,
        timeout: Duration,
    },
    /// The connection dropped while the request was in flight; it may or may not have run.
    #[error("connection to {endpoint} lost while {method} was in flight")]
    ConnectionLost { method: String, endpoint: String },
    /// The reply arrived but its `result` does not decode into the expected type.
    #[error("reply to {method} does not decode: {reason}")]
    BadReply { method: String, reason: String },
    /// The params could not be encoded.
    #[error("cannot encode params of {method}: {reason}")]
    Encode { method: String, reason: String },
    /// The client has been shut down.
    #[error("client is closed")]
    Closed,
}

/// Why an endpoint could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("endpoint {0:?} is not ipc://PATH or tcp://HOST:PORT")]
    BadEndpoint(String),
    #[error("refusing to bind {0}: only loopback tcp addresses may be bound without a key")]
    NotLoopback(String),
    #[error("a live server already listens on {0}")]
    InUse(String),
    #[error("{path} exists and is not a socket")]
    NotASocket { path: String },
    #[error("i/o error on {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("zeromq bind of {endpoint} failed: {source}")]
    Zmq {
        endpoint: String,
        #[source]
        source: zeromq::ZmqError,
    },
}
