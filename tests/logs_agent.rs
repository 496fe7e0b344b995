//! The logs agent writes exactly the bytes each app wrote, to `$ZPM_HOME/logs/NAME-out.log`
//! and `NAME-error.log`: in order, across partial lines, invalid UTF-8 and huge lines;
//! nothing lost or doubled when the agent (or the spawner) is SIGKILLed mid-flood;
//! rotated and gzipped by size from config.toml.

use crate::harness::{Zpm, poll, zpm_processes};
use std::io::Read as _;
use std::path::PathBuf;

fn log_file(zpm: &Zpm, name: &str) -> PathBuf {
    zpm.path("logs").join(name)
}

fn read(zpm: &Zpm, name: &str) -> Vec<u8> {
    std::fs::read(log_file(zpm, name)).unwrap_or_default()
}

/// Polls until `name` holds `want.len()` bytes, then compares exactly.
fn assert_file(zpm: &Zpm, name: &str, want: &[u8]) {
    let got = poll(&format!("{} bytes in {name}", want.len()), || {
        let got = read(zpm, name);
        (got.len() >= want.len()).then_some(got)
    });
    if got != want {
        let at = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(want.len());
        panic!(
            "{name}: {} bytes, want {}; first difference at byte {at}: got {:?}, want {:?}",
            got.len(),
            want.len(),
            String::from_utf8_lossy(&got[at.min(got.len())..(at + 40).min(got.len())]),
            String::from_utf8_lossy(&want[at.min(want.len())..(at + 40).min(want.len())]),
        );
    }
}

fn seq(from: u64, to: u64) -> Vec<u8> {
    (from..=to)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect()
}

#[test]
fn a_million_lines_of_seq_land_byte_exact() {
    let zpm = Zpm::new();
    zpm.ok(&[
        "start",
        "seq 1 1000000",
        "--name",
        "seq",
        "--no-autorestart",
    ]);
    assert_file(&zpm, "seq-out.log", &seq(1, 1_000_000));
    assert_eq!(read(&zpm, "seq-error.log"), b"");
}

#[test]
fn odd_bytes_partial_lines_and_a_10mb_line_are_written_as_is() {
    let zpm = Zpm::new();
    // Partial line completed 0.5 s later; invalid UTF-8, NUL, CRLF; stdout and stderr
    // interleaved; then a 10 MB line without a newline.
    let app = zpm.script(
        "odd.py",
        "import sys, time\n\
         o, e = sys.stdout.buffer, sys.stderr.buffer\n\
         o.write(b'start of a line'); o.flush()\n\
         time.sleep(0.5)\n\
         o.write(b' and its end\\n'); o.flush()\n\
         e.write(b'err one\\r\\n'); e.flush()\n\
         o.write(b'bad \\xff\\xfe utf8 and a \\x00 nul\\n'); o.flush()\n\
         e.write(b'err partial'); e.flush()\n\
         o.write(b'x' * (10 << 20)); o.flush()\n\
         time.sleep(1000)\n",
    );
    zpm.ok(&[
        "start",
        app.to_str().unwrap(),
        "--name",
        "odd",
        "--",
        &zpm.marker,
    ]);
    let mut out = b"start of a line and its end\nbad \xff\xfe utf8 and a \x00 nul\n".to_vec();
    out.extend(std::iter::repeat_n(b'x', 10 << 20));
    assert_file(&zpm, "odd-out.log", &out);
    assert_file(&zpm, "odd-error.log", b"err one\r\nerr partial");
}

#[test]
fn a_logs_agent_killed_mid_flood_loses_and_doubles_nothing() {
    let zpm = Zpm::new();
    // 3M lines in bursts of 10k over a few seconds, so the kills land mid-flood.
    let app = zpm.script(
        "flood.py",
        "import sys, time\nout = sys.stdout\nfor b in range(300):\n    out.write(''.join(f'{i}\\n' for i in range(b * 10000 + 1, b * 10000 + 10001)))\n    out.flush()\n    time.sleep(0.01)\ntime.sleep(1000)\n",
    );
    zpm.ok(&[
        "start",
        app.to_str().unwrap(),
        "--name",
        "flood",
        "--",
        &zpm.marker,
    ]);
    let want = seq(1, 3_000_000);
    // Kill the logs agent whenever it has written more since the last kill, a few times.
    let mut kills = 0;
    let mut last_len = 0;
    while kills < 4 {
        let len =
            std::fs::metadata(log_file(&zpm, "flood-out.log")).map_or(0, |m| m.len() as usize);
        if len >= want.len() {
            break;
        }
        if len > last_len
            && let [pid] = zpm_processes(zpm.home(), &["agent", "logs"])[..]
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid.cast_signed()),
                nix::sys::signal::Signal::SIGKILL,
            );
            kills += 1;
            last_len = len;
        }
        // A short pause between looks: polling, not waiting for a time to pass.
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_file(&zpm, "flood-out.log", &want);
    assert!(kills >= 1, "the agent was never killed mid-flood");
}

#[test]
fn a_new_spawner_s_first_bytes_are_not_skipped() {
    let zpm = Zpm::new();
    zpm.start_script(
        "talk",
        "#!/bin/sh\n# $1 marks us\necho \"run $$ begins\"\nseq 1 20000\nexec sleep 1000\n",
    );
    let first = poll("the first run's output", || {
        let out = read(&zpm, "talk-out.log");
        out.ends_with(b"\n20000\n").then_some(out)
    });
    let spawner = zpm_processes(zpm.home(), &["agent", "spawner"]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(spawner[0].cast_signed()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The replacement spawner starts the app again; its offsets start from 0 again, and
    // the whole second run must follow the first in the file.
    let both = poll("the second run's output", || {
        let out = read(&zpm, "talk-out.log");
        (out.len() >= 2 * first.len() - 8 && out.ends_with(b"\n20000\n")).then_some(out)
    });
    let second = &both[first.len()..];
    assert!(
        second.starts_with(b"run "),
        "{:?}",
        String::from_utf8_lossy(&second[..40])
    );
    assert!(second.ends_with(&seq(1, 20_000)), "second run incomplete");
    assert_eq!(
        second.len(),
        first.len() - first.iter().position(|b| *b == b'\n').unwrap()
            + second.iter().position(|b| *b == b'\n').unwrap()
    );
}

#[test]
fn rotation_by_size_keeps_the_newest_files_gzipped() {
    let zpm = Zpm::new();
    std::fs::write(
        zpm.path("config.toml"),
        "[logs]\nmax_size = \"64K\"\nretain = 2\ncompress = true\n",
    )
    .unwrap();
    zpm.ok(&["start", "seq 1 100000", "--name", "rot", "--no-autorestart"]);
    let want = seq(1, 100_000);
    let logs = zpm.path("logs");
    // The current file ends the output; two gzipped rotations hold what came before it.
    let (current, rotated) = poll("the output rotated into two .gz files", || {
        let current = read(&zpm, "rot-out.log");
        let mut gz: Vec<PathBuf> = std::fs::read_dir(&logs)
            .ok()?
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.to_string_lossy().ends_with(".gz"))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("rot-out__"))
            })
            .collect();
        gz.sort();
        (current.ends_with(b"\n100000\n") && gz.len() == 2).then_some((current, gz))
    });
    assert!(
        current.len() <= 64 * 1024,
        "{} bytes past max_size",
        current.len()
    );
    let mut kept = Vec::new();
    for path in &rotated {
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_end(&mut text)
            .unwrap();
        assert!(
            text.len() <= 64 * 1024 && !text.is_empty(),
            "{}",
            path.display()
        );
        kept.extend(text);
    }
    kept.extend(&current);
    assert!(
        want.ends_with(&kept),
        "rotated files + current are not the end of the output"
    );
    let plain: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .filter(|n| {
            n.starts_with("rot-out__")
                && !std::path::Path::new(n)
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
        })
        .collect();
    assert!(plain.is_empty(), "uncompressed rotations left: {plain:?}");
}

#[test]
fn an_unwritable_log_path_warns_and_writing_resumes_by_itself() {
    let zpm = Zpm::new();
    // A plain file where the logs directory should be: every log file fails to open.
    std::fs::write(zpm.path("logs"), b"in the way").unwrap();
    zpm.start_script("count", "#!/bin/sh\n# $1 marks us\ni=0\nwhile true; do i=$((i+1)); echo \"tick $i\"; sleep 0.05; done\n");
    let warnings = || {
        let out = zpm.cmd().arg("ping").output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let warning = poll("a warning naming the log file", || {
        let text = warnings();
        text.contains("count-out.log").then_some(text)
    });
    assert!(warning.contains("cannot write the log file"), "{warning}");
    let pid = zpm.ls()[0]["pid"].as_u64();
    std::fs::remove_file(zpm.path("logs")).unwrap();
    // Writing resumes by itself, from the first tick: nothing was lost meanwhile.
    let out = poll("ticks in the log file", || {
        let out = String::from_utf8(read(&zpm, "count-out.log")).ok()?;
        (out.lines().count() > 5).then_some(out)
    });
    let ticks: Vec<&str> = out.lines().collect();
    for (i, line) in ticks.iter().enumerate() {
        assert_eq!(*line, format!("tick {}", i + 1), "{out}");
    }
    poll("the warning gone", || {
        (!warnings().contains("count-out.log")).then_some(())
    });
    assert_eq!(
        zpm.ls()[0]["pid"].as_u64(),
        pid,
        "the app was never restarted"
    );
}

#[test]
fn logs_sock_survives_garbage_and_refuses_oversized_requests() {
    use std::io::{Read as _, Write as _};
    use zpm_proto::logfiles::TailRequest;
    use zpm_proto::method::logs::Tail;
    let zpm = Zpm::new();
    zpm.start_idle("calm");
    let agent = poll("the logs agent", || {
        let pids = zpm_processes(zpm.home(), &["agent", "logs"]);
        (pids.len() == 1 && zpm.path("logs.sock").exists()).then_some(pids[0])
    });
    // Not ZMTP at all: the guard hangs up; nothing else happens.
    let mut raw = std::os::unix::net::UnixStream::connect(zpm.path("logs.sock")).unwrap();
    raw.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _ = raw.write_all(&vec![0xff; 64 * 1024]);
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let client = zpm_rpc::Client::with_options(
        &format!("ipc://{}", zpm.path("logs.sock").display()),
        zpm_rpc::ClientOptions {
            version: zpm_proto::PROTOCOL_VERSION,
            ..zpm_rpc::ClientOptions::default()
        },
    );
    let timeout = std::time::Duration::from_secs(20);
    let ask = |ids: Vec<u32>, lines: u32| {
        let request = TailRequest {
            ids,
            lines,
            stream: None,
        };
        runtime.block_on(client.call_method::<Tail>(&request, timeout))
    };
    for (ids, lines) in [((0..20_000).collect(), 5), (vec![0], 1_000_000)] {
        match ask(ids, lines) {
            Err(zpm_rpc::CallError::Remote(e)) => {
                assert_eq!(e.code, zpm_rpc::ErrorCode::BadParams, "{e:?}");
            }
            other => panic!("an oversized request was served: {other:?}"),
        }
    }
    // Once God has told the agent about app 0, its out and err are served.
    let served = poll("app 0's tail", || {
        let served = ask(vec![0], 5).unwrap();
        (served.len() == 2).then_some(served)
    });
    assert!(served.iter().all(|t| t.name == "calm"), "{served:?}");
    assert_eq!(
        zpm_processes(zpm.home(), &["agent", "logs"]),
        [agent],
        "the agent survived"
    );
}
