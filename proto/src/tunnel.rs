//! What God offers through the keyed tunnel (zpm-tunnel): the service an initiator names
//! in its handshake, each carried to the ipc endpoint of the same name.

/// God's rpc endpoint (`rpc.sock`).
pub const RPC: &str = "rpc";
/// God's bus (`bus.sock`).
pub const BUS: &str = "bus";
