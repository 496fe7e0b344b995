//! The zpm event bus: publish/subscribe over zeromq with credit-based flow control.
//!
//! zmq.rs's PUB socket cannot bound its memory when a subscriber stalls, so the bus is a
//! ROUTER [`Publisher`] and DEALER [`Subscriber`]s following the ZeroMQ guide's credit
//! pattern: a subscriber says which topic prefixes it wants and how many events it will
//! take (its credit), the publisher sends matching events while credit lasts, and the
//! subscriber returns credit in batches as it consumes. Events beyond the credit are
//! dropped and counted at the publisher, which tells the subscriber (`bus:dropped`), and
//! every event carries a sequence number so the subscriber sees gaps too.
//!
//! Knows nothing about processes; PROTOCOL.md at the project root is the wire reference.

mod control;
mod error;
mod event;
mod gaps;
mod publisher;
mod relay;
mod subscriber;

pub use error::BusError;
pub use event::{Event, EventHeader, EventSource, RawEvent, now_ms};
pub use gaps::SeqTracker;
pub use publisher::{Publisher, PublisherOptions, PublisherStats, SubscriberInfo};
pub use relay::RelayEvent;
pub use subscriber::{Subscriber, SubscriberOptions, SubscriberStats};

/// Sent by the publisher to a subscriber whose events were dropped for lack of credit.
pub const TOPIC_DROPPED: &str = "bus:dropped";
/// Sent by the publisher to a peer it does not know (forgotten after silence).
pub const TOPIC_RESUBSCRIBE: &str = "bus:resubscribe";
/// Topics starting with this are the bus's own and are not gap-tracked.
pub const BUS_TOPIC_PREFIX: &str = "bus:";

/// Body of a [`TOPIC_DROPPED`] event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DroppedReport {
    /// Events dropped for this subscriber since the previous report.
    pub dropped: u64,
    /// Events dropped for this subscriber since it subscribed.
    pub total: u64,
}
