//! The writer against an in-memory spawner that honours cursors and acknowledgements, with
//! injected time: byte exactness, line assembly, rotation, failures, and resuming.

use super::*;
use crate::logs::format::{tests::unbase64, timestamp};
use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, SystemTime};
use zpm_proto::logfiles::{LogFormat, Rotation};
use zpm_proto::{LogChunk, LogStream};

const OUT: LogStream = LogStream::Out;
const ERR: LogStream = LogStream::Err;

/// The spawner's buffers as the writer sees them: every stream's bytes from offset 0, the
/// acknowledged ones dropped from `start`.
#[derive(Default)]
struct Hub {
    data: BTreeMap<StreamKey, Vec<u8>>,
    start: BTreeMap<StreamKey, u64>,
    /// Bytes per chunk at most.
    max: Option<usize>,
}

impl Hub {
    fn write(&mut self, id: u32, stream: LogStream, bytes: &[u8]) {
        self.data
            .entry((id, stream))
            .or_default()
            .extend_from_slice(bytes);
    }

    /// Like `LogHub::collect`: acknowledges, then reads from each cursor.
    fn fetch(&mut self, cursors: &[LogCursor]) -> LogsFetched {
        let mut chunks = Vec::new();
        for (&(id, stream), data) in &self.data {
            let start = self.start.entry((id, stream)).or_insert(0);
            let cursor = cursors.iter().find(|c| (c.id, c.stream) == (id, stream));
            let asked = cursor.map_or(*start, |c| c.offset).min(data.len() as u64);
            if let Some(cursor) = cursor {
                *start = (*start).max(cursor.acknowledged().min(asked));
            }
            let from = asked.max(*start);
            let end = self
                .max
                .map_or(data.len(), |max| data.len().min(from as usize + max));
            if end > from as usize || from > asked {
                chunks.push(LogChunk {
                    id,
                    stream,
                    offset: from,
                    data: data[from as usize..end].to_vec(),
                    dropped: from - asked,
                });
            }
        }
        LogsFetched { chunks, epoch: 0 }
    }

    fn acked(&self, id: u32, stream: LogStream) -> u64 {
        self.start.get(&(id, stream)).copied().unwrap_or(0)
    }
}

/// As [`crate::logs::step`] does: flush what is due → fetch → apply → save.
fn pump(hub: &mut Hub, writer: &mut Writer, now: Now) -> usize {
    writer.flush_due(now).unwrap();
    let fetched = hub.fetch(&writer.cursors());
    let chunks = fetched.chunks.len();
    writer.apply(fetched, now).unwrap();
    writer.save().unwrap();
    chunks
}

/// Pumps until a fetch brings nothing, then once more so the last save is acknowledged.
fn pump_all(hub: &mut Hub, writer: &mut Writer, now: Now) {
    for _ in 0..10_000 {
        if pump(hub, writer, now) == 0 {
            return;
        }
    }
    panic!("the writer never caught up");
}

fn t0() -> Now {
    Now {
        mono: Instant::now(),
        wall: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn target(dir: &Path, id: u32) -> LogTarget {
    let file = |kind: &str| {
        dir.join(format!("app{id}-{kind}.log"))
            .to_string_lossy()
            .into_owned()
    };
    LogTarget {
        id,
        name: format!("app{id}"),
        instance: 0,
        out_file: file("out"),
        error_file: file("err"),
        log_file: None,
        format: LogFormat::Raw,
        date_format: None,
        rotation: Rotation::default(),
    }
}

fn open(dir: &Path, targets: Vec<LogTarget>) -> Writer {
    Writer::open(&dir.join("ledger.json"), targets, Options::default())
}

fn read(path: &str) -> Vec<u8> {
    fs::read(path).unwrap_or_default()
}

fn stamp(writer: &Writer, pattern: &str, now: Now) -> String {
    timestamp(pattern, &writer.zone, now.wall).unwrap()
}

fn cursor(writer: &Writer, id: u32, stream: LogStream) -> LogCursor {
    *writer
        .cursors()
        .iter()
        .find(|c| (c.id, c.stream) == (id, stream))
        .unwrap()
}

#[test]
fn raw_single_source_files_get_the_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path(), 1);
    let mut writer = open(dir.path(), vec![t.clone()]);
    let mut hub = Hub::default();
    let now = t0();
    let mut out = Vec::new();
    let put = |hub: &mut Hub, stream, bytes: &[u8], out: &mut Vec<u8>| {
        hub.write(1, stream, bytes);
        if stream == OUT {
            out.extend_from_slice(bytes);
        }
    };
    put(&mut hub, OUT, b"partial li", &mut out);
    put(&mut hub, ERR, b"err \xff\xfe\0 bytes\r\n", &mut out);
    pump_all(&mut hub, &mut writer, now);
    assert_eq!(
        read(&t.out_file),
        b"partial li",
        "a raw partial line is written at once"
    );
    put(
        &mut hub,
        OUT,
        b"ne\r\nnul\0 and \xc3\x28 invalid\n",
        &mut out,
    );
    pump_all(&mut hub, &mut writer, now + ms(500));
    let mut huge = vec![b'x'; 10 << 20];
    huge[5 << 20] = 0;
    put(&mut hub, OUT, &huge, &mut out);
    hub.max = Some(4 << 20);
    pump_all(&mut hub, &mut writer, now + ms(600));
    assert_eq!(read(&t.out_file), out);
    assert_eq!(read(&t.error_file), b"err \xff\xfe\0 bytes\r\n");
    assert_eq!(
        hub.acked(1, OUT),
        out.len() as u64,
        "everything written is acknowledged"
    );
    assert_eq!(cursor(&writer, 1, OUT).ack, None);
    assert!(writer.take_errors().is_empty());
}

#[test]
fn timestamped_partial_lines_are_held_then_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = "%Y-%m-%d %H:%M:%S%.3f";
    let mut t = target(dir.path(), 1);
    t.date_format = Some(pattern.into());
    let mut writer = open(dir.path(), vec![t.clone()]);
    let mut hub = Hub::default();
    let now = t0();
    hub.write(1, OUT, b"abc");
    pump(&mut hub, &mut writer, now);
    assert_eq!(read(&t.out_file), b"", "held until its newline");
    let held = cursor(&writer, 1, OUT);
    assert_eq!(
        (held.offset, held.ack),
        (3, Some(0)),
        "read, not acknowledged"
    );
    assert_eq!(
        pump(&mut hub, &mut writer, now + ms(10)),
        0,
        "not sent again"
    );

    hub.write(1, OUT, b"def\nxyz");
    pump(&mut hub, &mut writer, now + ms(200));
    let s0 = stamp(&writer, pattern, now);
    let s200 = stamp(&writer, pattern, now + ms(200));
    assert_eq!(
        read(&t.out_file),
        format!("{s0}: abcdef\n").as_bytes(),
        "stamped when it began"
    );
    writer.flush_due(now + ms(699)).unwrap();
    assert_eq!(read(&t.out_file), format!("{s0}: abcdef\n").as_bytes());
    writer.flush_due(now + ms(700)).unwrap();
    writer.save().unwrap();
    let want = format!("{s0}: abcdef\n{s200}: xyz");
    assert_eq!(read(&t.out_file), want.as_bytes(), "written on timeout");
    assert_eq!(cursor(&writer, 1, OUT).ack, None);

    hub.write(1, OUT, b"123\nnext\n");
    pump(&mut hub, &mut writer, now + ms(1000));
    let s1000 = stamp(&writer, pattern, now + ms(1000));
    let want = format!("{want}123\n{s1000}: next\n");
    assert_eq!(
        read(&t.out_file),
        want.as_bytes(),
        "the rest of the line, no second prefix"
    );
}

#[test]
fn json_lines_parse_and_non_utf8_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = target(dir.path(), 3);
    t.format = LogFormat::Json;
    let mut writer = open(dir.path(), vec![t.clone()]);
    let mut hub = Hub::default();
    let now = t0();
    let lines: [&[u8]; 4] = [
        b"plain text",
        b"bad \xff\xfe\0 bytes",
        "héllo\r".as_bytes(),
        b"",
    ];
    for line in lines {
        hub.write(3, ERR, line);
        hub.write(3, ERR, b"\n");
    }
    pump_all(&mut hub, &mut writer, now);
    let text = String::from_utf8(read(&t.error_file)).unwrap();
    let parsed: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), lines.len());
    let rfc3339 = stamp(&writer, crate::logs::format::RFC3339_MS, now);
    for (value, line) in parsed.iter().zip(lines) {
        assert_eq!(value["timestamp"], rfc3339.as_str());
        assert_eq!(
            (value["app_name"].as_str(), value["id"].as_u64()),
            (Some("app3"), Some(3))
        );
        assert_eq!(value["stream"], "err");
        let exact = match value.get("message_b64") {
            Some(b64) => unbase64(b64.as_str().unwrap()),
            None => value["message"].as_str().unwrap().as_bytes().to_vec(),
        };
        assert_eq!(exact, line);
    }
    assert!(parsed[1].get("message_b64").is_some() && parsed[0].get("message_b64").is_none());
}

#[test]
fn a_shared_file_gets_whole_lines_from_each_source() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = target(dir.path(), 1);
    let combined = dir.path().join("app1.log").to_string_lossy().into_owned();
    t.log_file = Some(combined.clone());
    let mut writer = open(dir.path(), vec![t.clone()]);
    let mut hub = Hub::default();
    let now = t0();
    hub.write(1, OUT, b"o1\no2-");
    hub.write(1, ERR, b"e1\n");
    pump(&mut hub, &mut writer, now);
    hub.write(1, OUT, b"rest\n");
    pump(&mut hub, &mut writer, now + ms(100));
    assert_eq!(read(&combined), b"o1\ne1\no2-rest\n");
    assert_eq!(
        read(&t.out_file),
        b"o1\no2-rest\n",
        "the out file alone is still exact"
    );

    // A partial line written on timeout is ended by another source's line; its rest
    // follows as a line of its own.
    hub.write(1, OUT, b"slow-");
    pump(&mut hub, &mut writer, now + ms(200));
    writer.flush_due(now + ms(700)).unwrap();
    hub.write(1, ERR, b"e2\n");
    pump(&mut hub, &mut writer, now + ms(800));
    hub.write(1, OUT, b"line\n");
    pump(&mut hub, &mut writer, now + ms(900));
    assert_eq!(read(&combined), b"o1\ne1\no2-rest\nslow-\ne2\nline\n");
    assert_eq!(read(&t.out_file), b"o1\no2-rest\nslow-line\n");
}

#[test]
fn instances_sharing_a_file_never_interleave_mid_line() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b) = (target(dir.path(), 1), target(dir.path(), 2));
    b.out_file.clone_from(&a.out_file);
    a.date_format = Some("%S".into());
    b.date_format = Some("%S".into());
    let mut writer = open(dir.path(), vec![a.clone(), b]);
    let mut hub = Hub::default();
    let now = t0();
    hub.write(1, OUT, b"a1 start ");
    hub.write(2, OUT, b"b1 whole\nb2 start ");
    pump(&mut hub, &mut writer, now);
    hub.write(2, OUT, b"b2 end\n");
    hub.write(1, OUT, b"a1 end\n");
    pump(&mut hub, &mut writer, now);
    let s = stamp(&writer, "%S", now);
    let want = format!("{s}: b1 whole\n{s}: a1 start a1 end\n{s}: b2 start b2 end\n");
    assert_eq!(String::from_utf8(read(&a.out_file)).unwrap(), want);
}

#[test]
fn dropped_bytes_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path(), 1);
    let mut writer = open(dir.path(), vec![t.clone()]);
    hub_chunks(&mut writer, &[chunk(1, OUT, 0, b"first\n", 0)]);
    hub_chunks(&mut writer, &[chunk(1, OUT, 100, b"after a gap\n", 94)]);
    assert_eq!(writer.dropped(), 94);
    assert_eq!(read(&t.out_file), b"first\nafter a gap\n");
    assert_eq!(cursor(&writer, 1, OUT).offset, 112);
}

#[test]
fn a_gap_ends_the_held_line_and_starts_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = target(dir.path(), 1);
    t.date_format = Some("%S".into());
    let mut writer = open(dir.path(), vec![t.clone()]);
    hub_chunks(&mut writer, &[chunk(1, OUT, 0, b"one\npart", 0)]);
    hub_chunks(&mut writer, &[chunk(1, OUT, 20, b"new\n", 12)]);
    let s = stamp(&writer, "%S", t0());
    let want = format!("{s}: one\n{s}: part\n{s}: new\n");
    assert_eq!(String::from_utf8(read(&t.out_file)).unwrap(), want);
    assert_eq!(writer.dropped(), 12);
}

fn chunk(id: u32, stream: LogStream, offset: u64, data: &[u8], dropped: u64) -> LogChunk {
    LogChunk {
        id,
        stream,
        offset,
        data: data.to_vec(),
        dropped,
    }
}

fn hub_chunks(writer: &mut Writer, chunks: &[LogChunk]) {
    let fetched = LogsFetched {
        epoch: 0,
        chunks: chunks.to_vec(),
    };
    writer.apply(fetched, t0()).unwrap();
    writer.save().unwrap();
}

/// Every rotated file of `path`, oldest first, decompressed, then the current file.
fn rotated_contents(path: &str) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for rotated in Family::of(Path::new(path)).list().unwrap() {
        assert!(
            rotated.plain.is_none() && rotated.partial.is_none(),
            "{rotated:?}"
        );
        let mut unpacked = Vec::new();
        let gz = fs::File::open(rotated.gz.unwrap()).unwrap();
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut unpacked).unwrap();
        all.push(unpacked);
    }
    all.push(read(path));
    all
}

fn wait_for_background(writer: &Writer) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while writer.background_jobs() > 0 {
        assert!(Instant::now() < deadline, "gzip jobs did not finish");
        std::thread::yield_now();
    }
}

#[test]
fn rotation_by_size_keeps_retain_files_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = target(dir.path(), 1);
    t.rotation = Rotation {
        max_size: Some(100),
        retain: 2,
        compress: true,
    };
    let mut writer = open(dir.path(), vec![t.clone()]);
    let mut hub = Hub::default();
    let now = t0();
    let mut all = Vec::new();
    for i in 0..20 {
        let line = format!("line {i:02} {}\n", "x".repeat(21)); // 30 bytes
        hub.write(1, OUT, line.as_bytes());
        all.extend_from_slice(line.as_bytes());
        pump(&mut hub, &mut writer, now + ms(i));
    }
    wait_for_background(&writer);
    assert!(writer.take_errors().is_empty());
    let files = rotated_contents(&t.out_file);
    assert_eq!(files.len(), 3, "two rotated files and the current one");
    for file in &files[..2] {
        assert_eq!(
            file.len(),
            90,
            "rotated before a write would pass 100 bytes"
        );
    }
    assert_eq!(files.concat(), all[all.len() - files.concat().len()..]);
    assert_eq!(files[2].len(), 20 * 30 % 90);
}

#[test]
fn rotation_never_splits_a_formatted_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = target(dir.path(), 1);
    t.date_format = Some("%S".into());
    t.rotation = Rotation {
        max_size: Some(50),
        retain: 10,
        compress: true,
    };
    let mut writer = open(dir.path(), vec![t.clone()]);
    let mut hub = Hub::default();
    let now = t0();
    let s = stamp(&writer, "%S", now);
    // A long line written in pieces (max_partial) and on timeout must stay in one file.
    writer.options.max_partial = 16;
    hub.write(1, OUT, b"short\n");
    hub.write(1, OUT, &[b'L'; 40]);
    pump(&mut hub, &mut writer, now);
    hub.write(1, OUT, &[b'M'; 40]);
    pump(&mut hub, &mut writer, now);
    hub.write(1, OUT, b"\nafter\n");
    pump(&mut hub, &mut writer, now);
    wait_for_background(&writer);
    let files = rotated_contents(&t.out_file);
    // Rotated before the long line (a boundary), not inside it although it passes
    // max_size, and again before the next line.
    let want = vec![
        format!("{s}: short\n").into_bytes(),
        format!("{s}: {}{}\n", "L".repeat(40), "M".repeat(40)).into_bytes(),
        format!("{s}: after\n").into_bytes(),
    ];
    assert_eq!(files, want);
}

#[test]
fn truncate_empties_the_files_and_writing_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (target(dir.path(), 1), target(dir.path(), 2));
    let mut writer = open(dir.path(), vec![a.clone(), b.clone()]);
    let mut hub = Hub::default();
    let now = t0();
    hub.write(1, OUT, b"a before\n");
    hub.write(2, OUT, b"b before\n");
    pump_all(&mut hub, &mut writer, now);
    writer.truncate(&[1], now).unwrap();
    assert_eq!(read(&a.out_file), b"");
    assert_eq!(read(&b.out_file), b"b before\n");
    hub.write(1, OUT, b"a after\n");
    pump_all(&mut hub, &mut writer, now);
    assert_eq!(read(&a.out_file), b"a after\n");
    // A restart now keeps the file as it is.
    drop(writer);
    let mut writer = open(dir.path(), vec![a.clone(), b]);
    pump_all(&mut hub, &mut writer, now);
    assert_eq!(read(&a.out_file), b"a after\n");
}

#[test]
fn reopen_after_an_external_rename_starts_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path(), 1);
    let mut writer = open(dir.path(), vec![t.clone()]);
    let mut hub = Hub::default();
    let now = t0();
    hub.write(1, OUT, b"one\n");
    pump_all(&mut hub, &mut writer, now);
    let moved = dir.path().join("moved.log");
    fs::rename(&t.out_file, &moved).unwrap();
    hub.write(1, OUT, b"two\n");
    pump_all(&mut hub, &mut writer, now);
    writer.reopen_all();
    hub.write(1, OUT, b"three\n");
    pump_all(&mut hub, &mut writer, now);
    assert_eq!(
        fs::read(&moved).unwrap(),
        b"one\ntwo\n",
        "the moved file keeps its bytes"
    );
    assert_eq!(read(&t.out_file), b"three\n");
    // Killed now and restarted: the new file is the recorded one, nothing changes.
    drop(writer);
    let mut writer = open(dir.path(), vec![t.clone()]);
    pump_all(&mut hub, &mut writer, now);
    assert_eq!(read(&t.out_file), b"three\n");
}

#[test]
fn an_unwritable_dir_is_reported_once_acknowledges_nothing_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("logs");
    fs::write(&blocker, b"a file where the log dir should be").unwrap();
    let t = target(&blocker, 1);
    let ok = target(dir.path(), 2);
    let mut writer = open(dir.path(), vec![t.clone(), ok.clone()]);
    let mut hub = Hub::default();
    let now = t0();
    hub.write(1, OUT, b"kept\n");
    hub.write(2, OUT, b"other app\n");
    pump(&mut hub, &mut writer, now);
    let errors = writer.take_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].kind, errors[0].path.as_path()),
        (LogErrorKind::Open, Path::new(&t.out_file))
    );
    assert_eq!(read(&ok.out_file), b"other app\n", "the others go on");
    for step in 1..=9 {
        hub.write(1, OUT, format!("more {step}\n").as_bytes());
        pump(&mut hub, &mut writer, now + ms(step * 100));
        assert!(writer.take_errors().is_empty(), "reported once");
        assert_eq!(hub.acked(1, OUT), 0, "nothing acknowledged");
    }
    assert_eq!(writer.failing(), [Path::new(&t.out_file)]);
    // Retried (at most every second) and failing again: still quiet.
    pump(&mut hub, &mut writer, now + ms(1000));
    pump(&mut hub, &mut writer, now + ms(1000));
    assert!(writer.take_errors().is_empty());
    fs::remove_file(&blocker).unwrap();
    pump(&mut hub, &mut writer, now + ms(1500));
    assert_eq!(read(&t.out_file), b"", "waits for its retry time");
    pump_all(&mut hub, &mut writer, now + ms(2000));
    let want: String = std::iter::once("kept\n".to_owned())
        .chain((1..=9).map(|s| format!("more {s}\n")))
        .collect();
    assert_eq!(String::from_utf8(read(&t.out_file)).unwrap(), want);
    assert_eq!(hub.acked(1, OUT), want.len() as u64);
    assert!(writer.take_errors().is_empty());
    assert!(writer.failing().is_empty());
}

#[test]
fn a_full_disk_is_reported_once_and_nothing_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = target(dir.path(), 1);
    t.out_file = "/dev/full".into();
    let mut writer = open(dir.path(), vec![t]);
    let mut hub = Hub::default();
    let now = t0();
    for step in 0..5 {
        hub.write(1, OUT, b"lost?\n");
        pump(&mut hub, &mut writer, now + ms(step * 1000));
        assert_eq!(hub.acked(1, OUT), 0);
    }
    let errors = writer.take_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].kind, LogErrorKind::Write);
    assert_eq!(errors[0].source.raw_os_error(), Some(nix::libc::ENOSPC));
}

/// Writes `input`, one fetch per piece, with a writer killed after the writes of every
/// `kill_every`-th fetch, before its save. With `flushes`, partial lines are written early
/// at some fetches (never at one followed by a kill, so both runs flush the same bytes).
fn run_with_kills(
    dir: &Path,
    input: &[(u32, LogStream, Vec<u8>)],
    kill_every: usize,
    flushes: bool,
) {
    let targets = kill_test_targets(dir);
    let mut hub = Hub::default();
    let now = t0();
    let mut writer = open(dir, targets.clone());
    for (i, (id, stream, bytes)) in input.iter().enumerate() {
        hub.write(*id, *stream, bytes);
        let fetched = hub.fetch(&writer.cursors());
        writer.apply(fetched, now).unwrap();
        if flushes && i % 10 == 3 && i % 7 != 6 {
            writer.flush_all(now).unwrap();
        }
        if kill_every > 0 && i % kill_every == kill_every - 1 {
            drop(writer);
            writer = open(dir, targets.clone());
        } else {
            writer.save().unwrap();
        }
    }
    pump_all(&mut hub, &mut writer, now);
    writer.flush_all(now).unwrap();
}

/// App 1: timestamped; app 2: raw, sharing app 1's error file; both into one combined
/// file; app 3: json.
fn kill_test_targets(dir: &Path) -> Vec<LogTarget> {
    let mut a = target(dir, 1);
    a.log_file = Some(dir.join("all.log").to_string_lossy().into_owned());
    a.date_format = Some("%H:%M".into());
    let mut b = target(dir, 2);
    b.log_file.clone_from(&a.log_file);
    b.error_file.clone_from(&a.error_file);
    let mut j = target(dir, 3);
    j.format = LogFormat::Json;
    vec![a, b, j]
}

fn kill_test_input() -> Vec<(u32, LogStream, Vec<u8>)> {
    (0..300u32)
        .map(|i| {
            let stream = if i % 5 == 0 { ERR } else { OUT };
            let bytes = match i % 4 {
                0 => format!("line {i}\n").into_bytes(),
                1 => format!("part {i} ").into_bytes(),
                2 => format!("end {i}\nnext {i} ").into_bytes(),
                _ => [&b"\xff"[..], format!("{i}\n\n").as_bytes()].concat(),
            };
            (1 + i % 3, stream, bytes)
        })
        .collect()
}

fn sorted_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    lines.sort_unstable();
    lines
}

#[test]
fn a_kill_between_write_and_save_loses_and_doubles_nothing() {
    let input = kill_test_input();
    for flushes in [false, true] {
        let (clean, killed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        run_with_kills(clean.path(), &input, 0, flushes);
        run_with_kills(killed.path(), &input, 7, flushes);
        let single_source = [
            "app1-out.log",
            "app2-out.log",
            "app3-out.log",
            "app3-err.log",
        ];
        for name in single_source {
            let want = fs::read(clean.path().join(name)).unwrap();
            let got = fs::read(killed.path().join(name)).unwrap();
            assert!(!want.is_empty());
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "{name}"
            );
        }
        if !flushes {
            // Lines of different sources may come in another order after a restart (one
            // fetch brings what several did), never cut or twice.
            for name in ["all.log", "app1-err.log"] {
                let want = fs::read(clean.path().join(name)).unwrap();
                let got = fs::read(killed.path().join(name)).unwrap();
                assert_eq!(sorted_lines(&got), sorted_lines(&want), "{name}");
            }
        }
    }
}

#[test]
fn a_ledger_older_than_the_file_cuts_the_file_back() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path(), 1);
    let mut hub = Hub::default();
    let now = t0();
    let mut writer = open(dir.path(), vec![t.clone()]);
    hub.write(1, OUT, b"saved\n");
    pump_all(&mut hub, &mut writer, now);
    hub.write(1, OUT, b"written, not saved\n");
    let fetched = hub.fetch(&writer.cursors());
    writer.apply(fetched, now).unwrap();
    assert_eq!(read(&t.out_file), b"saved\nwritten, not saved\n");
    drop(writer);
    let mut writer = open(dir.path(), vec![t.clone()]);
    assert_eq!(read(&t.out_file), b"saved\n", "cut back on open");
    pump_all(&mut hub, &mut writer, now);
    assert_eq!(read(&t.out_file), b"saved\nwritten, not saved\n");
}

#[test]
fn a_kill_after_a_rotation_leaves_nothing_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = target(dir.path(), 1);
    t.rotation = Rotation {
        max_size: Some(40),
        retain: 100,
        compress: false,
    };
    let mut hub = Hub::default();
    let now = t0();
    let mut writer = open(dir.path(), vec![t.clone()]);
    let mut all = Vec::new();
    for i in 0..30 {
        let line = format!("line {i:03}\n");
        hub.write(1, OUT, line.as_bytes());
        all.extend_from_slice(line.as_bytes());
        let fetched = hub.fetch(&writer.cursors());
        writer.apply(fetched, now + ms(i)).unwrap();
        if i % 4 == 3 {
            drop(writer);
            writer = open(dir.path(), vec![t.clone()]);
        } else {
            writer.save().unwrap();
        }
    }
    pump_all(&mut hub, &mut writer, now);
    let mut got = Vec::new();
    for rotated in Family::of(Path::new(&t.out_file)).list().unwrap() {
        got.extend(fs::read(rotated.plain.unwrap()).unwrap());
    }
    got.extend(read(&t.out_file));
    assert_eq!(
        String::from_utf8(got).unwrap(),
        String::from_utf8(all).unwrap()
    );
}

#[test]
fn a_renamed_app_continues_in_its_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let old = target(dir.path(), 1);
    let mut new = old.clone();
    new.out_file = dir
        .path()
        .join("renamed-out.log")
        .to_string_lossy()
        .into_owned();
    let mut writer = open(dir.path(), vec![old.clone()]);
    let mut hub = Hub::default();
    let now = t0();
    hub.write(1, OUT, b"before\n");
    pump_all(&mut hub, &mut writer, now);
    hub.write(1, OUT, b"in flight\n");
    writer.set_targets(vec![new.clone()], now).unwrap();
    hub.write(1, OUT, b"after\n");
    pump_all(&mut hub, &mut writer, now);
    assert_eq!(read(&old.out_file), b"before\n");
    assert_eq!(read(&new.out_file), b"in flight\nafter\n");
    assert_eq!(writer.targets(), [new]);
}

#[test]
fn bytes_of_an_unknown_app_wait_for_its_target_then_are_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let late = target(dir.path(), 5);
    let mut writer = open(dir.path(), vec![]);
    let mut hub = Hub::default();
    let now = t0();
    hub.write(5, OUT, b"early\n");
    hub.write(6, OUT, b"nobody\n");
    pump_all(&mut hub, &mut writer, now);
    assert_eq!((hub.acked(5, OUT), hub.acked(6, OUT)), (0, 0));
    writer
        .set_targets(vec![late.clone()], now + ms(100))
        .unwrap();
    hub.write(5, OUT, b"late\n");
    pump_all(&mut hub, &mut writer, now + ms(200));
    assert_eq!(read(&late.out_file), b"early\nlate\n");
    pump_all(&mut hub, &mut writer, now + Duration::from_secs(11));
    assert_eq!(writer.discarded(), 7);
    pump_all(&mut hub, &mut writer, now + Duration::from_secs(11));
    assert_eq!(hub.acked(6, OUT), 7);
}

#[test]
fn discarded_streams_are_acknowledged_and_never_opened() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = target(dir.path(), 1);
    t.out_file = zpm_proto::logfiles::DISCARD.into();
    let mut writer = open(dir.path(), vec![t.clone()]);
    let mut hub = Hub::default();
    hub.write(1, OUT, b"into nothing\n");
    hub.write(1, ERR, b"kept\n");
    pump_all(&mut hub, &mut writer, t0());
    assert_eq!(hub.acked(1, OUT), 13);
    assert_eq!(read(&t.error_file), b"kept\n");
    assert!(
        writer
            .files
            .iter()
            .all(|f| f.sink.discard == f.sink.identity.is_none())
    );
}

#[test]
fn tail_reads_into_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = target(dir.path(), 1);
    t.rotation = Rotation {
        max_size: Some(32),
        retain: 3,
        compress: false,
    };
    let mut writer = open(dir.path(), vec![t.clone()]);
    let mut hub = Hub::default();
    let now = t0();
    for i in 0..20 {
        hub.write(1, OUT, format!("line {i:02}\n").as_bytes());
        pump(&mut hub, &mut writer, now + ms(i));
        if i == 9 {
            // One rotated file compressed, the others plain.
            t.rotation.compress = true;
            writer.set_targets(vec![t.clone()], now).unwrap();
        }
        if i == 12 {
            t.rotation.compress = false;
            writer.set_targets(vec![t.clone()], now).unwrap();
        }
    }
    wait_for_background(&writer);
    let lines = |n| {
        crate::logs::tail(&t, Some(OUT), n)
            .unwrap()
            .into_iter()
            .map(|l| String::from_utf8(l).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(lines(2), ["line 18", "line 19"]);
    let want: Vec<String> = (6..20).map(|i| format!("line {i:02}")).collect();
    assert_eq!(
        lines(14),
        want,
        "current file plus rotated ones, plain and gzip"
    );
    assert_eq!(lines(1000).len(), 16, "only what retention kept");
    assert!(
        Family::of(Path::new(&t.out_file))
            .list()
            .unwrap()
            .iter()
            .any(|r| r.gz.is_some())
    );
    assert!(crate::logs::tail(&t, Some(ERR), 5).unwrap().is_empty());
}
