//! A test consumer pulls an app's output from the spawner's host-local endpoint:
//! every byte, in order, across partial lines.

use crate::harness::{DEADLINE, Zpm};
use std::time::{Duration, Instant};
use zpm_proto::{LogCursor, LogStream, LogsFetch, LogsFetched};

#[test]
fn logs_fetch_returns_every_byte_in_order() {
    let zpm = Zpm::new();
    // 3000 numbered lines, written in pieces so reads split lines; a partial line at the end.
    let script = zpm.script(
        "talk.sh",
        "#!/bin/sh\ni=0\nwhile [ $i -lt 3000 ]; do printf 'line %05d ' $i; printf 'tail\\n'; i=$((i+1)); done\nprintf 'partial'\necho oops >&2\nexec sleep 1000\n",
    );
    let rows = zpm.json(&["start", &script.display().to_string(), "--name", "talk"]);
    let id = rows[0]["id"].as_u64().unwrap() as u32;
    let mut expected: Vec<u8> = (0..3000)
        .flat_map(|i| format!("line {i:05} tail\n").into_bytes())
        .collect();
    expected.extend_from_slice(b"partial");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (out, err) = runtime.block_on(pull(&zpm, id, expected.len(), 5));
    assert_eq!(String::from_utf8_lossy(&err), "oops\n");
    assert_eq!(out.len(), expected.len());
    assert!(
        out == expected,
        "stdout bytes differ from what the app wrote"
    );
}

async fn pull(zpm: &Zpm, id: u32, out_len: usize, err_len: usize) -> (Vec<u8>, Vec<u8>) {
    let endpoint = format!("ipc://{}", zpm.path("spawner.sock").display());
    let client = zpm_rpc::Client::new(&endpoint);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + DEADLINE;
    while out.len() < out_len || err.len() < err_len {
        assert!(
            Instant::now() < deadline,
            "pulled only {} + {} bytes",
            out.len(),
            err.len()
        );
        let request = LogsFetch {
            after: vec![
                LogCursor {
                    id,
                    stream: LogStream::Out,
                    offset: out.len() as u64,
                },
                LogCursor {
                    id,
                    stream: LogStream::Err,
                    offset: err.len() as u64,
                },
            ],
            max_bytes: 4096,
            wait_ms: 200,
        };
        let Ok(fetched) = client
            .call::<_, LogsFetched>("logs.fetch", &request, Duration::from_secs(5))
            .await
        else {
            continue;
        };
        for chunk in fetched.chunks.into_iter().filter(|c| c.id == id) {
            assert_eq!(chunk.dropped, 0, "nothing may be dropped");
            let buf = if chunk.stream == LogStream::Out {
                &mut out
            } else {
                &mut err
            };
            assert_eq!(
                chunk.offset,
                buf.len() as u64,
                "chunks must continue exactly where we are"
            );
            buf.extend_from_slice(&chunk.data);
        }
    }
    (out, err)
}
