//! What the log-path tests share: a shell script that writes awkward output to both
//! streams, and exactly what it writes.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses what it needs

use std::fmt::Write as _;

/// Prints `$1` lines of varying length to stdout, every 13th followed by a partial line
/// the next one completes; every 5th a line to stderr, every 17th a partial line to stderr.
pub const SCRIPT: &str = r#"
i=0
while [ $i -lt "$1" ]; do
  w=$((i % 97 + 1))
  printf "line %d %0${w}d\n" $i 0
  if [ $((i % 13)) -eq 0 ]; then printf "part%d-" $i; fi
  if [ $((i % 5)) -eq 0 ]; then printf "err %d %0${w}d\n" $i 7 >&2; fi
  if [ $((i % 17)) -eq 0 ]; then printf "e%d:" $i >&2; fi
  i=$((i + 1))
done
"#;

/// (stdout, stderr) of [`SCRIPT`] run with `lines`.
pub fn script_output(lines: u32) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (String::new(), String::new());
    for i in 0..lines {
        let w = (i % 97 + 1) as usize;
        writeln!(out, "line {i} {:0w$}", 0).unwrap();
        if i % 13 == 0 {
            write!(out, "part{i}-").unwrap();
        }
        if i % 5 == 0 {
            writeln!(err, "err {i} {:0w$}", 7).unwrap();
        }
        if i % 17 == 0 {
            write!(err, "e{i}:").unwrap();
        }
    }
    (out.into_bytes(), err.into_bytes())
}

/// Equal bytes, or a failure naming the first difference (not megabytes of bytes).
pub fn assert_same(name: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let show = |b: &[u8]| {
        String::from_utf8_lossy(&b[at.saturating_sub(40)..(at + 40).min(b.len())]).into_owned()
    };
    panic!(
        "{name}: got {} bytes, want {}; first difference at {at}: got {:?}, want {:?}",
        got.len(),
        want.len(),
        show(got),
        show(want)
    );
}
