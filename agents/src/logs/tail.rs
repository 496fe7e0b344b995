//! The last lines of an app's log files (`zpm logs --lines N`), read backwards in bounded
//! blocks, continuing into rotated files (gzipped or not) when the current one is short.

use super::rotate::{Family, Rotated};
use flate2::read::MultiGzDecoder;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use zpm_proto::LogStream;
use zpm_proto::logfiles::{DISCARD, LogTarget};

/// Most bytes read from one file: longer lines lose their start, fewer lines come back.
const MAX_TAIL_BYTES: usize = 8 << 20;
const BLOCK: usize = 64 * 1024;

/// The last `lines` lines (without their `\n`; a final line without one included) of
/// `target`'s file for `stream`. `None` means the combined `log_file`, or without one the
/// last lines of `out_file` followed by those of `error_file`. Missing and discarded files
/// have no lines.
pub fn tail(
    target: &LogTarget,
    stream: Option<LogStream>,
    lines: usize,
) -> io::Result<Vec<Vec<u8>>> {
    let paths = match (stream, &target.log_file) {
        (Some(LogStream::Out), _) => vec![&target.out_file],
        (Some(LogStream::Err), _) => vec![&target.error_file],
        (None, Some(combined)) => vec![combined],
        (None, None) => vec![&target.out_file, &target.error_file],
    };
    let mut found = Vec::new();
    for path in paths.into_iter().filter(|p| p.as_str() != DISCARD) {
        found.extend(tail_path(Path::new(path), lines)?);
    }
    Ok(found)
}

fn tail_path(path: &Path, lines: usize) -> io::Result<Vec<Vec<u8>>> {
    if lines == 0 {
        return Ok(Vec::new());
    }
    let mut found = match File::open(path) {
        Ok(file) => tail_file(&file, lines)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    if found.len() < lines {
        let rotated = Family::of(path).list().unwrap_or_default();
        for older in rotated.iter().rev() {
            let more = tail_rotated(older, lines - found.len())?;
            found.splice(0..0, more);
            if found.len() >= lines {
                break;
            }
        }
    }
    Ok(found)
}

/// A rotated file may be compressed (and its plain form removed) while we look.
fn tail_rotated(rotated: &Rotated, lines: usize) -> io::Result<Vec<Vec<u8>>> {
    if let Some(plain) = &rotated.plain {
        match File::open(plain) {
            Ok(file) => return tail_file(&file, lines),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut gz = plain.clone().into_os_string();
                gz.push(".gz");
                return tail_gz(&PathBuf::from(gz), lines);
            }
            Err(e) => return Err(e),
        }
    }
    match &rotated.gz {
        Some(gz) => tail_gz(gz, lines),
        None => Ok(Vec::new()),
    }
}

/// Reads `file` backwards block by block until it has `lines` complete lines.
fn tail_file(file: &File, lines: usize) -> io::Result<Vec<Vec<u8>>> {
    let len = file.metadata()?.len();
    let mut pos = len;
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let (mut newlines, mut total) = (0usize, 0usize);
    while pos > 0 && newlines <= lines && total < MAX_TAIL_BYTES {
        let size = BLOCK.min(pos as usize);
        pos -= size as u64;
        let mut block = vec![0; size];
        file.read_exact_at(&mut block, pos)?;
        newlines += count_newlines(&block);
        total += size;
        blocks.push(block);
    }
    blocks.reverse();
    let text = blocks.concat();
    Ok(last_lines(&text, pos > 0, lines))
}

#[expect(
    clippy::naive_bytecount,
    reason = "one count per 64 KiB block; not worth a crate"
)]
fn count_newlines(block: &[u8]) -> usize {
    block.iter().filter(|&&b| b == b'\n').count()
}

/// The last `lines` lines of `text`, whose first line is cut if `cut_front`.
fn last_lines(text: &[u8], cut_front: bool, lines: usize) -> Vec<Vec<u8>> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    if text.is_empty() && !cut_front {
        return Vec::new();
    }
    let mut all: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    if cut_front && all.len() > 1 {
        all.remove(0);
    }
    let skip = all.len().saturating_sub(lines);
    all[skip..].iter().map(|line| line.to_vec()).collect()
}

/// A gzip cannot be read backwards: decompress it all, keeping only the last lines.
fn tail_gz(path: &Path, lines: usize) -> io::Result<Vec<Vec<u8>>> {
    let file = match File::open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?,
    };
    let mut reader = BufReader::new(MultiGzDecoder::new(file));
    let mut last: VecDeque<Vec<u8>> = VecDeque::new();
    let (mut current, mut total) = (Vec::new(), 0usize);
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let newline = buf.iter().position(|&b| b == b'\n');
        let used = newline.map_or(buf.len(), |at| at + 1);
        let room = MAX_TAIL_BYTES.saturating_sub(current.len());
        current.extend_from_slice(&buf[..newline.unwrap_or(used).min(room)]);
        reader.consume(used);
        if newline.is_some() {
            total += current.len();
            last.push_back(std::mem::take(&mut current));
            while last.len() > lines || (total > MAX_TAIL_BYTES && last.len() > 1) {
                total -= last.pop_front().map_or(0, |line| line.len());
            }
        }
    }
    if !current.is_empty() {
        last.push_back(current);
        if last.len() > lines {
            last.pop_front();
        }
    }
    Ok(last.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    #[test]
    fn last_lines_handles_cut_fronts_and_missing_final_newlines() {
        assert_eq!(last_lines(b"a\nb\nc\n", false, 2), [b"b", b"c"]);
        assert_eq!(last_lines(b"a\nb\nc", false, 5), [b"a", b"b", b"c"]);
        assert_eq!(last_lines(b"xa\nb\n", true, 5), [b"b"]);
        assert_eq!(last_lines(b"", false, 5), Vec::<Vec<u8>>::new());
        assert_eq!(last_lines(b"\n\n", false, 5), [b"", b""]);
    }

    #[test]
    fn reads_backwards_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        let mut text = String::new();
        for i in 0..50_000 {
            writeln!(text, "line {i}").unwrap();
        }
        std::fs::write(&path, &text).unwrap();
        let file = File::open(&path).unwrap();
        let got = tail_file(&file, 20_000).unwrap();
        assert_eq!(got.len(), 20_000);
        assert_eq!(got[0], b"line 30000");
        assert_eq!(got[19_999], b"line 49999");
    }
}
