//! Property test of the handshake's decoder: whatever a peer without the key sends, the
//! responder refuses it (never panics, never completes) within its deadline.

use proptest::prelude::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;
use zpm_tunnel::{HandshakeLimits, Key, handshake};

fn limits() -> HandshakeLimits {
    HandshakeLimits {
        deadline: Duration::from_millis(200),
        ..HandshakeLimits::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_first_messages_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let outcome = rt.block_on(async {
            let (mut attacker, server) = tokio::io::duplex(4096);
            attacker.write_all(&bytes).await.unwrap();
            // Then silence: a short message must end at the deadline, not hang.
            let key = Key::from_bytes([9; 32]);
            handshake::respond(server, &key, limits()).await.map(|_| ())
        });
        prop_assert!(outcome.is_err());
    }

    #[test]
    fn a_real_first_message_with_bytes_flipped_is_refused(flip in 2usize..50, bit in 0u8..8) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let outcome = rt.block_on(async {
            let key = Key::from_bytes([5; 32]);
            let (client, mut wire) = tokio::io::duplex(4096);
            let initiator = tokio::spawn({
                let key = key.clone();
                async move { handshake::initiate(client, &key, "rpc", limits()).await.map(|_| ()) }
            });
            // Capture the initiator's first message, corrupt one bit, hand it on.
            let mut first = vec![0u8; 2];
            tokio::io::AsyncReadExt::read_exact(&mut wire, &mut first).await.unwrap();
            let len = usize::from(u16::from_be_bytes([first[0], first[1]]));
            let mut body = vec![0u8; len];
            tokio::io::AsyncReadExt::read_exact(&mut wire, &mut body).await.unwrap();
            first.extend(body);
            let at = flip % first.len();
            first[at] ^= 1 << bit;
            let (mut to_server, server) = tokio::io::duplex(4096);
            to_server.write_all(&first).await.unwrap();
            let refused = handshake::respond(server, &key, limits()).await.map(|_| ());
            initiator.abort();
            refused
        });
        prop_assert!(outcome.is_err());
    }
}
