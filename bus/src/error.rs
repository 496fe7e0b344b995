/// Errors of the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(transparent)]
    Bind(#[from] zpm_rpc::BindError),
    #[error("cannot encode event for {topic}: {reason}")]
    Encode { topic: String, reason: String },
    #[error("event does not decode: {0}")]
    Decode(String),
    #[error("could not connect to {endpoint} within {timeout:?}")]
    Connect {
        endpoint: String,
        timeout: std::time::Duration,
    },
    #[error("zeromq error: {0}")]
    Zmq(#[from] zeromq::ZmqError),
    #[error("the publisher has stopped")]
    Closed,
    #[error("the publisher's queue is full; event dropped")]
    Full,
    #[error("event of {bytes} bytes is larger than the publisher's whole queue")]
    TooLarge { bytes: usize },
}
