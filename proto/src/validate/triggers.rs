//! Rules for `depends_on`, `watch` and `env_origin`.

use super::{Invalid, MAX_DURATION_MS, app_name};
use crate::AppSpec;

/// Most entries in `depends_on`.
pub const MAX_DEPENDENCIES: usize = 64;
/// Most `watch` paths, and most `ignore_watch` globs.
pub const MAX_WATCH_ENTRIES: usize = 64;
/// Longest `ignore_watch` glob, in bytes.
pub const MAX_GLOB_BYTES: usize = 1024;
/// Longest `watch_delay`: one hour.
pub const MAX_WATCH_DELAY_MS: u64 = 3600 * 1000;

/// `depends_on` of the app `spec`: valid names, none twice, not itself.
pub fn depends_on(spec: &AppSpec) -> Result<(), Invalid> {
    if spec.depends_on.len() > MAX_DEPENDENCIES {
        return Err(Invalid::new(format!(
            "invalid depends_on: {} entries, at most {MAX_DEPENDENCIES}",
            spec.depends_on.len()
        )));
    }
    for (i, dependency) in spec.depends_on.iter().enumerate() {
        app_name(&dependency.name).map_err(|e| e.within("depends_on"))?;
        if dependency.name == spec.name {
            return Err(Invalid::new(format!(
                "invalid depends_on: {:?} depends on itself",
                spec.name
            )));
        }
        if spec.depends_on[..i]
            .iter()
            .any(|d| d.name == dependency.name)
        {
            return Err(Invalid::new(format!(
                "invalid depends_on: {:?} is named twice",
                dependency.name
            )));
        }
    }
    if let Some(ms) = spec.depends_timeout_ms
        && (ms == 0 || ms > MAX_DURATION_MS)
    {
        return Err(Invalid::new(format!(
            "invalid depends_timeout {ms} ms: expected 1 ms to {MAX_DURATION_MS} ms"
        )));
    }
    Ok(())
}

/// `watch`: absolute paths, bounded globs, a delay of at most an hour.
pub fn watch(watch: &crate::watch::Watch) -> Result<(), Invalid> {
    if watch.paths.len() > MAX_WATCH_ENTRIES || watch.ignore.len() > MAX_WATCH_ENTRIES {
        return Err(Invalid::new(format!(
            "invalid watch: at most {MAX_WATCH_ENTRIES} paths and {MAX_WATCH_ENTRIES} ignore_watch globs"
        )));
    }
    for path in &watch.paths {
        absolute_path("watch", path)?;
    }
    for glob in &watch.ignore {
        if glob.is_empty() || glob.len() > MAX_GLOB_BYTES || glob.chars().any(char::is_control) {
            return Err(Invalid::new(format!(
                "invalid ignore_watch {:?}: expected 1 to {MAX_GLOB_BYTES} bytes without control characters",
                glob.escape_debug().to_string()
            )));
        }
    }
    if watch.delay_ms > MAX_WATCH_DELAY_MS {
        return Err(Invalid::new(format!(
            "invalid watch_delay {} ms: at most {MAX_WATCH_DELAY_MS} ms",
            watch.delay_ms
        )));
    }
    Ok(())
}

/// `env_origin`: absolute paths, names of variables the app has.
pub fn env_origin(spec: &AppSpec) -> Result<(), Invalid> {
    let origin = &spec.env_origin;
    for path in origin.file.iter().chain(&origin.env_files) {
        absolute_path("env_origin", path)?;
    }
    if let Some(name) = &origin.env_name {
        super::env_name(name)?;
    }
    if origin.env_files.len() > MAX_WATCH_ENTRIES {
        return Err(Invalid::new(format!(
            "invalid env_origin: at most {MAX_WATCH_ENTRIES} env files"
        )));
    }
    if let Some(name) = origin.overrides.iter().find(|n| !spec.env.contains_key(*n)) {
        return Err(Invalid::new(format!(
            "invalid env_origin: override {name:?} is not in env"
        )));
    }
    Ok(())
}

fn absolute_path(field: &str, path: &str) -> Result<(), Invalid> {
    if path.starts_with('/') && !path.contains('\0') && path.len() <= 4096 {
        return Ok(());
    }
    Err(Invalid::new(format!(
        "invalid {field} path {:?}: expected an absolute path of at most 4096 bytes without NUL",
        path.escape_debug().to_string()
    )))
}

/// Bytes of text these fields add to a spec.
pub fn text_bytes(spec: &AppSpec) -> usize {
    let strings = |items: &[String]| items.iter().map(String::len).sum::<usize>();
    let origin = &spec.env_origin;
    spec.depends_on.iter().map(|d| d.name.len()).sum::<usize>()
        + strings(&spec.watch.paths)
        + strings(&spec.watch.ignore)
        + origin.file.as_ref().map_or(0, String::len)
        + origin.env_name.as_ref().map_or(0, String::len)
        + strings(&origin.env_files)
        + strings(&origin.overrides)
}

/// Every rule of this file for one spec.
pub fn triggers(spec: &AppSpec) -> Result<(), Invalid> {
    depends_on(spec)?;
    watch(&spec.watch)?;
    env_origin(spec)
}
