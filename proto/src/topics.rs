//! Bus topics. `:`-separated; subscribers match by prefix.

pub const PROCESS_EVENT: &str = "process:event";
pub const PROCESS_EXCEPTION: &str = "process:exception";
pub const PROCESS_MSG: &str = "process:msg";
pub const LOG_OUT: &str = "log:out";
pub const LOG_ERR: &str = "log:err";
pub const METRICS: &str = "metrics";
pub const AGENT_UP: &str = "agent:up";
pub const AGENT_DOWN: &str = "agent:down";
pub const GOD_UP: &str = "god:up";
/// Sent by the bus itself to a subscriber that lost events for lack of credit.
pub const BUS_DROPPED: &str = "bus:dropped";
