//! Property tests of the frame codec.

use proptest::prelude::*;
use zpm_tunnel::{Key, handshake, seal};

fn pair() -> (snow::TransportState, snow::TransportState) {
    handshake::pair_in_memory(&Key::from_bytes([7; 32])).expect("pair")
}

proptest! {
    // Each case runs a real handshake, slow in a debug build.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..8_000)) {
        let (_, mut rx) = pair();
        let mut out = Vec::new();
        let mut rest = &bytes[..];
        // Decode until incomplete or refused; random input must never yield plaintext.
        while let Ok(Some(n)) = seal::unseal(&mut rx, rest, &mut out) {
            rest = &rest[n..];
        }
        prop_assert!(out.is_empty());
    }

    #[test]
    fn seal_then_unseal_round_trips(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..2000), 1..8),
    ) {
        let (mut tx, mut rx) = pair();
        let mut wire = Vec::new();
        for p in &payloads {
            seal::seal(&mut tx, p, &mut wire).expect("seal");
        }
        let mut rest = &wire[..];
        for p in &payloads {
            let mut out = Vec::new();
            let n = seal::unseal(&mut rx, rest, &mut out).expect("unseal").expect("complete");
            prop_assert_eq!(&out, p);
            rest = &rest[n..];
        }
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn any_single_bit_flip_is_rejected(
        payload in proptest::collection::vec(any::<u8>(), 0..500),
        bit in any::<proptest::sample::Index>(),
    ) {
        let (mut tx, mut rx) = pair();
        let mut wire = Vec::new();
        seal::seal(&mut tx, &payload, &mut wire).expect("seal");
        let bit = bit.index(wire.len() * 8);
        wire[bit / 8] ^= 1 << (bit % 8);
        let mut out = Vec::new();
        // A flipped header either makes the frame incomplete (a shorter length, and the
        // rest then fails) or announces a length whose body does not authenticate.
        match seal::unseal(&mut rx, &wire, &mut out) {
            Ok(Some(_)) => prop_assert!(false, "tampered frame accepted"),
            Ok(None) => prop_assert!(bit < 16, "only a header flip can make it incomplete"),
            Err(_) => {}
        }
        prop_assert!(out.is_empty());
    }
}

#[test]
fn oversized_chunk_and_short_frame_are_refused() {
    let (mut tx, mut rx) = pair();
    let mut wire = Vec::new();
    assert!(seal::seal(&mut tx, &vec![0; seal::MAX_CHUNK + 1], &mut wire).is_err());
    seal::seal(&mut tx, &vec![1; seal::MAX_CHUNK], &mut wire).expect("largest chunk");
    assert_eq!(wire.len(), seal::HEADER + seal::MAX_FRAME);
    let mut out = Vec::new();
    assert!(matches!(
        seal::unseal(&mut rx, &[0, 15, 0, 0], &mut out),
        Err(zpm_tunnel::Error::ShortFrame(15))
    ));
}
