//! What subscribers send the publisher: one msgpack map per message, tagged by `t`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(crate) enum Control {
    /// Replaces this peer's subscription: its prefixes and its credit window.
    Subscribe {
        v: u32,
        prefixes: Vec<String>,
        credit: u32,
        /// Bytes of events the publisher may have in flight (0 or absent: its maximum).
        #[serde(default)]
        credit_bytes: u64,
    },
    /// Returns `n` credits after consuming `n` events.
    Credit { n: u32 },
    /// Keeps a quiet subscriber from being forgotten.
    Heartbeat,
    /// The subscriber is leaving.
    Unsubscribe,
}

impl Control {
    pub(crate) fn encode(&self) -> Vec<u8> {
        // A fixed, string-keyed shape: encoding cannot fail.
        rmp_serde::to_vec_named(self).unwrap_or_default()
    }

    pub(crate) fn decode(payload: &[u8]) -> Option<Self> {
        rmp_serde::from_slice(payload).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all() {
        for c in [
            Control::Subscribe {
                v: 1,
                prefixes: vec!["log:".into()],
                credit: 10,
                credit_bytes: 0,
            },
            Control::Credit { n: 4 },
            Control::Heartbeat,
            Control::Unsubscribe,
        ] {
            assert_eq!(Control::decode(&c.encode()), Some(c));
        }
        assert_eq!(Control::decode(b"\x81\xa1t\xa3bad"), None);
    }
}
