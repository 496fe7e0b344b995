//! Any command auto-launches the daemon; racing CLIs end with exactly one.

use crate::harness::{Zpm, poll, zpm_processes};

#[test]
fn concurrent_auto_launch_ends_with_one_god_and_one_spawner() {
    let zpm = Zpm::new();
    let pids: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| zpm.json(&["ping"])["pid"].as_u64().unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        pids.windows(2).all(|w| w[0] == w[1]),
        "every CLI reached the same God: {pids:?}"
    );
    assert_eq!(zpm_processes(zpm.home(), &["daemon"]).len(), 1);
    poll("one spawner", || {
        (zpm_processes(zpm.home(), &["agent", "spawner"]).len() == 1).then_some(())
    });
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(zpm.home()).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o700, "ZPM_HOME must be private");
}
