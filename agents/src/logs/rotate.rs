//! Rotated files: their names (PM2-logrotate style, `<stem>__<YYYY-MM-DD_HH-MM-SS>.<ext>`,
//! `_<n>` added when the name is taken), and the background work on them — gzip and
//! retention — on one std thread, so the write path never waits for it.

use super::format::timestamp;
use flate2::Compression;
use flate2::write::GzEncoder;
use jiff::tz::TimeZone;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::SystemTime;

const STAMP: &str = "%Y-%m-%d_%H-%M-%S";
/// Suffix of a gzip being written; renamed to `.gz` once complete and fsynced.
const PARTIAL: &str = ".gz.partial";

/// The rotated files of one log file path.
#[derive(Debug, Clone)]
pub(crate) struct Family {
    dir: PathBuf,
    /// `<stem>__`
    prefix: String,
    /// `.<ext>`, or empty.
    ext: String,
}

/// One rotated file, in whatever forms it exists (plain, gzip, gzip being written).
#[derive(Debug, Default)]
pub(crate) struct Rotated {
    pub plain: Option<PathBuf>,
    pub gz: Option<PathBuf>,
    pub partial: Option<PathBuf>,
}

impl Rotated {
    fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.plain, &self.gz, &self.partial].into_iter().flatten()
    }
}

impl Family {
    pub(crate) fn of(path: &Path) -> Self {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let text = |s: Option<&std::ffi::OsStr>| s.map(|s| s.to_string_lossy().into_owned());
        Self {
            dir,
            prefix: format!("{}__", text(path.file_stem()).unwrap_or_default()),
            ext: text(path.extension()).map_or_else(String::new, |ext| format!(".{ext}")),
        }
    }

    /// A name for a file rotated at `wall`, sorting after every rotated file of the same
    /// second (a counter past theirs: reusing a pruned one would sort out of order).
    pub(crate) fn new_name(&self, zone: &TimeZone, wall: SystemTime) -> PathBuf {
        let stamp = timestamp(STAMP, zone, wall).unwrap_or_else(|_| "0000-00-00_00-00-00".into());
        let taken = self.keys().unwrap_or_default();
        let counter = taken
            .iter()
            .filter(|(s, _)| *s == stamp)
            .map(|&(_, n)| n + 1)
            .max()
            .unwrap_or(0);
        let counter = if counter == 0 {
            String::new()
        } else {
            format!("_{counter}")
        };
        self.dir
            .join(format!("{}{stamp}{counter}{}", self.prefix, self.ext))
    }

    fn keys(&self) -> io::Result<Vec<(String, u32)>> {
        let mut keys = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                keys.extend(self.parse(name).map(|(key, _)| key));
            }
        }
        Ok(keys)
    }

    /// Every rotated file of this family, oldest first.
    pub(crate) fn list(&self) -> io::Result<Vec<Rotated>> {
        let mut found: Vec<((String, u32), Rotated)> = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some((key, form)) = self.parse(&name) else {
                continue;
            };
            let index = match found.iter().position(|(k, _)| *k == key) {
                Some(index) => index,
                None => {
                    found.push((key, Rotated::default()));
                    found.len() - 1
                }
            };
            let slot = &mut found[index].1;
            *match form {
                Form::Plain => &mut slot.plain,
                Form::Gz => &mut slot.gz,
                Form::Partial => &mut slot.partial,
            } = Some(entry.path());
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found.into_iter().map(|(_, rotated)| rotated).collect())
    }

    /// `(stamp, counter)` and the form of a rotated file's name; `None` for other files.
    fn parse(&self, name: &str) -> Option<((String, u32), Form)> {
        let rest = name.strip_prefix(&self.prefix)?;
        let (rest, form) = if let Some(rest) = rest.strip_suffix(PARTIAL) {
            (rest, Form::Partial)
        } else if let Some(rest) = rest.strip_suffix(".gz") {
            (rest, Form::Gz)
        } else {
            (rest, Form::Plain)
        };
        let middle = rest.strip_suffix(self.ext.as_str())?;
        let (stamp, counter) = match middle.get(19..) {
            Some("") => (middle, 0),
            Some(tail) => (&middle[..19], tail.strip_prefix('_')?.parse().ok()?),
            None => return None,
        };
        let shape_ok = stamp.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 | 13 | 16 => b == b'-',
            10 => b == b'_',
            _ => b.is_ascii_digit(),
        });
        shape_ok.then(|| ((stamp.to_owned(), counter), form))
    }
}

enum Form {
    Plain,
    Gz,
    Partial,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Work on rotated files.
#[derive(Debug)]
pub(crate) enum Job {
    /// Gzip this rotated file (then remove it).
    Compress(PathBuf),
    /// Keep at most `retain` rotated files of `family`, deleting the oldest.
    Prune { family: Family, retain: u32 },
}

/// Failures of background jobs, for the writer to report.
pub(crate) type JobErrors = Arc<Mutex<Vec<(PathBuf, io::Error)>>>;

/// The background thread running [`Job`]s in order; started on the first job, ends when
/// this is dropped and its queue is done.
#[derive(Debug, Default)]
pub(crate) struct Background {
    queue: Option<mpsc::Sender<Job>>,
    pending: Arc<AtomicUsize>,
    errors: JobErrors,
}

impl Background {
    pub(crate) fn submit(&mut self, job: Job) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        let job = match &self.queue {
            Some(queue) => match queue.send(job) {
                Ok(()) => return,
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let (queue, jobs) = mpsc::channel();
        let (pending, errors) = (Arc::clone(&self.pending), Arc::clone(&self.errors));
        let started = std::thread::Builder::new()
            .name("zpm-logs-rotate".into())
            .spawn(move || {
                for job in jobs {
                    run_job(job, &errors);
                    pending.fetch_sub(1, Ordering::SeqCst);
                }
            });
        match started {
            Ok(_) => {
                // The receiver lives in the thread just started, so this send succeeds.
                let _ = queue.send(job);
                self.queue = Some(queue);
            }
            Err(_) => {
                // No thread to be had: better late on the write path than never.
                run_job(job, &self.errors);
                self.pending.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Jobs submitted and not finished yet.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    pub(crate) fn take_errors(&self) -> Vec<(PathBuf, io::Error)> {
        std::mem::take(&mut *self.errors.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

fn run_job(job: Job, errors: &JobErrors) {
    let outcome = match &job {
        Job::Compress(path) => compress(path).map_err(|e| (path.clone(), e)),
        Job::Prune { family, retain } => {
            prune(family, *retain).map_err(|e| (family.dir.clone(), e))
        }
    };
    if let Err(failure) = outcome {
        errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(failure);
    }
}

/// Gzips `path` into `<path>.gz` and removes `path` once the gzip is complete and durable.
/// A file already gone (pruned) is not an error; an existing `.gz` is complete (it is only
/// renamed into place after its fsync), so then only `path` is removed.
fn compress(path: &Path) -> io::Result<()> {
    let gz = with_suffix(path, ".gz");
    if !gz.exists() {
        let input = match File::open(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            other => other?,
        };
        let partial = with_suffix(path, PARTIAL);
        let output = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o640)
            .open(&partial)?;
        let mut encoder = GzEncoder::new(BufWriter::new(output), Compression::default());
        io::copy(&mut BufReader::new(input), &mut encoder)?;
        let output = encoder
            .finish()?
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        output.sync_all()?;
        fs::rename(&partial, &gz)?;
        if let Some(dir) = gz.parent() {
            File::open(dir)?.sync_all()?;
        }
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn prune(family: &Family, retain: u32) -> io::Result<()> {
    let rotated = family.list()?;
    let excess = rotated.len().saturating_sub(retain as usize);
    for old in &rotated[..excess] {
        for path in old.paths() {
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn wall(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn names_sort_by_time_then_counter_and_skip_strangers() {
        let dir = tempfile::tempdir().unwrap();
        let family = Family::of(&dir.path().join("app-out.log"));
        let utc = TimeZone::UTC;
        let mut made = Vec::new();
        for secs in [1_700_000_000, 1_700_000_000, 1_600_000_000] {
            let name = family.new_name(&utc, wall(secs));
            fs::write(&name, b"x").unwrap();
            made.push(name);
        }
        let names: Vec<_> = made
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "app-out__2023-11-14_22-13-20.log",
                "app-out__2023-11-14_22-13-20_1.log",
                "app-out__2020-09-13_12-26-40.log"
            ]
        );
        for stranger in [
            "app-out.log",
            "app-out__junk.log",
            "other__2020-09-13_12-26-40.log",
        ] {
            fs::write(dir.path().join(stranger), b"x").unwrap();
        }
        fs::rename(&made[1], with_suffix(&made[1], ".gz")).unwrap();
        let listed = family.list().unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(listed[0].plain.as_ref(), Some(&made[2]));
        assert_eq!(listed[1].plain.as_ref(), Some(&made[0]));
        assert_eq!(listed[2].gz, Some(with_suffix(&made[1], ".gz")));
        assert!(listed[2].plain.is_none());
    }

    #[test]
    fn compress_replaces_the_file_with_its_gzip_and_prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let family = Family::of(&dir.path().join("a.log"));
        let mut background = Background::default();
        let data: Vec<u8> = (0..100_000u32).flat_map(u32::to_le_bytes).collect();
        for secs in 0..4 {
            let name = family.new_name(&TimeZone::UTC, wall(secs));
            fs::write(&name, &data).unwrap();
            background.submit(Job::Compress(name));
        }
        background.submit(Job::Prune {
            family: family.clone(),
            retain: 2,
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while background.pending() > 0 {
            assert!(std::time::Instant::now() < deadline);
            std::thread::yield_now();
        }
        assert!(background.take_errors().is_empty());
        let listed = family.list().unwrap();
        assert_eq!(listed.len(), 2);
        for rotated in &listed {
            assert!(rotated.plain.is_none() && rotated.partial.is_none());
            let gz = rotated.gz.as_ref().unwrap();
            let mut unpacked = Vec::new();
            io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(File::open(gz).unwrap()),
                &mut unpacked,
            )
            .unwrap();
            assert_eq!(unpacked, data);
        }
        assert!(
            listed[1]
                .gz
                .as_ref()
                .unwrap()
                .ends_with("a__1970-01-01_00-00-03.log.gz")
        );
    }
}
