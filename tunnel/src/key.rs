//! The pre-shared 256-bit key: a file holding 64 hex digits and a newline, mode 0600.

use snow::resolvers::{CryptoResolver as _, DefaultResolver};
use std::fmt;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

pub const KEY_BYTES: usize = 32;

/// Longest file we read: anything longer is not a key, and we never slurp a large file.
const MAX_FILE_BYTES: u64 = 2 * KEY_BYTES as u64 + 2;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {what}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error(
        "{path} already exists; not overwriting a key (remove it first if you mean to replace it)"
    )]
    Exists { path: PathBuf },
    #[error(
        "{path} is accessible by group or others (mode {mode:04o}); a key must be private: run `chmod 600 {path}`"
    )]
    NotPrivate { path: PathBuf, mode: u32 },
    #[error("{path} is not a zpm key ({reason}); expected 64 hex digits and a newline")]
    Format { path: PathBuf, reason: &'static str },
    #[error("the operating system's random number generator failed: {0}")]
    Rng(String),
}

/// A pre-shared key. `Debug` shows only that it is a key, never its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_BYTES]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<secret>)")
    }
}

impl Key {
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        Self(bytes)
    }

    /// A fresh key from the OS RNG (snow's default resolver, i.e. getrandom).
    pub fn generate() -> Result<Self, KeyError> {
        let mut rng = DefaultResolver
            .resolve_rng()
            .ok_or_else(|| KeyError::Rng("no RNG available".into()))?;
        let mut bytes = [0u8; KEY_BYTES];
        rng.try_fill_bytes(&mut bytes)
            .map_err(|e| KeyError::Rng(e.to_string()))?;
        Ok(Self(bytes))
    }

    /// Generates a key and writes it to a new file at `path` with mode 0600. An existing
    /// file is never overwritten: replacing a key cuts every host that holds the old one.
    pub fn write_new(path: &Path) -> Result<Self, KeyError> {
        let key = Self::generate()?;
        let io = |what| {
            let path = path.to_owned();
            move |source| KeyError::Io { path, what, source }
        };
        // create_new + mode at open: the file never exists with wider permissions.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::AlreadyExists {
                    KeyError::Exists {
                        path: path.to_owned(),
                    }
                } else {
                    io("create")(source)
                }
            })?;
        let mut text = key.to_hex();
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(io("write"))?;
        file.sync_all().map_err(io("sync"))?;
        Ok(key)
    }

    /// Reads a key file, refusing one that group or others may read or write.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let io = |what| {
            let path = path.to_owned();
            move |source| KeyError::Io { path, what, source }
        };
        let file = std::fs::File::open(path).map_err(io("open"))?;
        // Checked on the open file, so the file we read is the file we checked.
        let meta = file.metadata().map_err(io("stat"))?;
        let format = |reason| KeyError::Format {
            path: path.to_owned(),
            reason,
        };
        if !meta.is_file() {
            return Err(format("not a regular file"));
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::NotPrivate {
                path: path.to_owned(),
                mode,
            });
        }
        let mut text = Vec::new();
        file.take(MAX_FILE_BYTES)
            .read_to_end(&mut text)
            .map_err(io("read"))?;
        let digits = text.strip_suffix(b"\n").unwrap_or(&text);
        if digits.len() != 2 * KEY_BYTES {
            return Err(format("wrong length"));
        }
        let mut bytes = [0u8; KEY_BYTES];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let (Some(hi), Some(lo)) = (nibble(pair[0]), nibble(pair[1])) else {
                return Err(format("not hexadecimal"));
            };
            *byte = hi << 4 | lo;
        }
        Ok(Self(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }

    fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(2 * KEY_BYTES + 1);
        for b in self.0 {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
        out
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A key that can be replaced while connections are served: new connections use the new
/// one, connections already made keep theirs. Cheap to clone; every clone is the same key.
#[derive(Clone, Debug)]
pub struct SharedKey(std::sync::Arc<std::sync::RwLock<Key>>);

impl SharedKey {
    pub fn new(key: Key) -> Self {
        Self(std::sync::Arc::new(std::sync::RwLock::new(key)))
    }

    pub fn current(&self) -> Key {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn replace(&self, key: Key) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = key;
    }
}

/// Key rotation without a restart: on every SIGHUP, loads `path` again into `key`. A file
/// that cannot be loaded (missing, not private, malformed) is logged and the old key kept.
pub async fn reload_on_hangup(key: SharedKey, path: PathBuf) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGHUP; the key is reloaded only by a restart");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match Key::load(&path) {
            Ok(new) => {
                key.replace(new);
                tracing::info!(path = %path.display(), "SIGHUP: tunnel key reloaded");
            }
            Err(e) => tracing::error!(error = %e, "SIGHUP: keeping the old tunnel key"),
        }
    }
}

impl From<Key> for SharedKey {
    fn from(key: Key) -> Self {
        Self::new(key)
    }
}
