//! `$ZPM_HOME` (default `~/.zpm`), created with mode 0700 and kept that way.

use anyhow::Context as _;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use zpm_host::home::Home;

pub fn resolve() -> anyhow::Result<Home> {
    let root = match std::env::var_os("ZPM_HOME") {
        Some(root) if !root.is_empty() => PathBuf::from(root),
        _ => std::env::home_dir()
            .context("cannot find the home directory; set ZPM_HOME")?
            .join(".zpm"),
    };
    let root = if root.is_absolute() {
        root
    } else {
        std::env::current_dir()
            .context("reading the current directory")?
            .join(root)
    };
    ensure_private_dir(&root)?;
    Ok(Home::new(root))
}

fn ensure_private_dir(root: &std::path::Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .with_context(|| format!("creating {}", root.display()))?;
    let mode = std::fs::metadata(root)
        .with_context(|| format!("reading {}", root.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private (0700)", root.display()))?;
    }
    Ok(())
}
