//! The logs agent writes an app's output to its files: every byte, in order, across
//! partial lines. A reader of the spawner's endpoint that is not the registered consumer
//! never holds an app back.

use crate::harness::{DEADLINE, Zpm, poll, status};
use std::time::{Duration, Instant};
use zpm_proto::LogsFetch;
use zpm_proto::method::logs::Fetch;

#[test]
fn the_logs_agent_writes_every_byte_in_order() {
    let zpm = Zpm::new();
    // 3000 numbered lines, written in pieces so reads split lines; a partial line at the end.
    let script = zpm.script(
        "talk.sh",
        "#!/bin/sh\ni=0\nwhile [ $i -lt 3000 ]; do printf 'line %05d ' $i; printf 'tail\\n'; i=$((i+1)); done\nprintf 'partial'\necho oops >&2\nexec sleep 1000\n",
    );
    zpm.json(&["start", &script.display().to_string(), "--name", "talk"]);
    let mut expected: Vec<u8> = (0..3000)
        .flat_map(|i| format!("line {i:05} tail\n").into_bytes())
        .collect();
    expected.extend_from_slice(b"partial");
    let read = |name: &str| std::fs::read(zpm.path("logs").join(name)).unwrap_or_default();
    let out = poll("the whole output in talk-out.log", || {
        let out = read("talk-out.log");
        (out.len() >= expected.len() && read("talk-error.log").len() >= 5).then_some(out)
    });
    assert_eq!(String::from_utf8_lossy(&read("talk-error.log")), "oops\n");
    assert_eq!(out.len(), expected.len());
    assert!(
        out == expected,
        "stdout bytes differ from what the app wrote"
    );
}

/// The bug of issue 4: a client polling `logs.fetch` from offset 0 with `max_bytes: 1` froze
/// every app that writes output. A plain reader must never gate an app.
#[test]
fn a_plain_reader_polling_never_freezes_a_chatty_app() {
    let zpm = Zpm::new();
    let progress = zpm.path("progress");
    // ~1 KB lines, so the spawner's buffer (256 KiB) and the pipe (64 KiB) fill within a few
    // hundred lines; the line count is written to a file every 16 lines.
    let script = zpm.script(
        "chatty.sh",
        &format!(
            "#!/bin/sh\ni=0\nwhile :; do\n  printf '%01000d\\n' $i\n  i=$((i+1))\n  \
             if [ $((i % 16)) -eq 0 ]; then echo $i > {p}.tmp && mv {p}.tmp {p}; fi\ndone\n",
            p = progress.display()
        ),
    );
    let rows = zpm.json(&["start", &script.display().to_string(), "--name", "chatty"]);
    let pid = rows[0]["pid"].as_u64().unwrap();
    let lines = || {
        std::fs::read_to_string(&progress)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Well past what the buffer and the pipe hold: without a consumer, the oldest go.
    poll("the app wrote 1000 lines", || {
        (lines() > 1000).then_some(())
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let samples = runtime.block_on(poll_as_plain_reader(&zpm, &lines));
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    // Frozen, the app could write at most one pipe-full (~64 lines) after the first poll.
    assert!(
        last > first + 1000,
        "the app stalled while a reader polled: {samples:?}"
    );
    let rows = zpm.ls();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["pid"].as_u64(),
        Some(pid),
        "the app was not restarted"
    );
    assert_eq!(status(&rows[0]), "online");
}

/// Polls `{after: [], max_bytes: 1, wait_ms: 0}` every ~200 ms until the app has written
/// 1000 more lines after the first poll (or the deadline); returns the line counts seen.
async fn poll_as_plain_reader(zpm: &Zpm, lines: &dyn Fn() -> u64) -> Vec<u64> {
    let endpoint = format!("ipc://{}", zpm.path("spawner.sock").display());
    let client = zpm_rpc::Client::new(&endpoint);
    let request = LogsFetch {
        epoch: None,
        after: vec![],
        max_bytes: 1,
        wait_ms: 0,
        consume: false,
    };
    let mut samples = Vec::new();
    let started = Instant::now();
    // At least 3 s of polling, longer if the machine is so loaded the app is slow.
    while started.elapsed() < Duration::from_secs(3)
        || samples.last().copied().unwrap_or(0) < samples.first().copied().unwrap_or(0) + 1000
    {
        if started.elapsed() > DEADLINE {
            break;
        }
        let fetched = client
            .call_method::<Fetch>(&request, Duration::from_secs(5))
            .await
            .unwrap();
        let data: Vec<u8> = fetched.chunks.into_iter().flat_map(|c| c.data).collect();
        // The logs agent consumes as it goes: what is still held may be nothing.
        assert!(data.len() <= 1, "at most the one byte asked for: {data:?}");
        assert!(
            data.iter().all(|b| b.is_ascii_digit() || *b == b'\n'),
            "{data:?}"
        );
        samples.push(lines());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    samples
}
