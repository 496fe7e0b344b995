//! Every message survives msgpack (named maps, as on the wire) unchanged.

use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use zpm_proto::{AgentHello, AgentInfo, Pong, ProcessEvent, ProcessEventKind, ProcessStatus};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let bytes = rmp_serde::to_vec_named(value).expect("encode");
    let back: T = rmp_serde::from_slice(&bytes).expect("decode");
    assert_eq!(&back, value);
}

fn status() -> impl Strategy<Value = ProcessStatus> {
    prop_oneof![
        Just(ProcessStatus::Launching),
        Just(ProcessStatus::Online),
        Just(ProcessStatus::Stopping),
        Just(ProcessStatus::Stopped),
        Just(ProcessStatus::Errored),
        Just(ProcessStatus::WaitingRestart),
    ]
}

fn event_kind() -> impl Strategy<Value = ProcessEventKind> {
    prop_oneof![
        Just(ProcessEventKind::Start),
        Just(ProcessEventKind::Online),
        Just(ProcessEventKind::Exit),
        Just(ProcessEventKind::Restart),
        Just(ProcessEventKind::Stop),
        Just(ProcessEventKind::Delete),
        Just(ProcessEventKind::Errored),
    ]
}

proptest! {
    #[test]
    fn pong(version in ".*", pid: u32, uptime_ms: u64) {
        round_trip(&Pong { version, pid, host: "h".into(), uptime_ms, warnings: vec![], bus_dropped: u64::from(pid), guards: std::collections::BTreeMap::new(), listening: Some("tcp://127.0.0.1:7100".into()) });
    }

    #[test]
    fn agent_hello(role in ".*", host in ".*", pid: u32, version in ".*", protocol: u32) {
        round_trip(&AgentHello { role, host, pid, version, protocol });
    }

    #[test]
    fn agent_info(role in ".*", host in ".*", pid: u32, version in ".*", connected: bool) {
        round_trip(&AgentInfo { role, host, pid, version, connected, uptime_ms: u64::from(pid), memory: Some(u64::from(pid) * 4096), last_seen_ms: 7 });
    }

    #[test]
    fn process_status(status in status()) {
        round_trip(&status);
    }

    #[test]
    fn process_event(
        event in event_kind(),
        id: u32,
        name in ".*",
        pid: Option<u32>,
        exit_code: Option<i32>,
        signal in proptest::option::of("SIG[A-Z]{2,6}"),
    ) {
        round_trip(&ProcessEvent { event, id, name, pid, exit_code, signal });
    }
}

#[test]
fn status_wire_names_match_the_cli_contract() {
    let name = |s: ProcessStatus| -> String {
        let bytes = rmp_serde::to_vec_named(&s).expect("encode");
        rmp_serde::from_slice(&bytes).expect("decode as string")
    };
    assert_eq!(name(ProcessStatus::WaitingRestart), "waiting-restart");
    assert_eq!(name(ProcessStatus::Online), "online");
}
