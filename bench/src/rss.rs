//! This process's resident memory, through zpm's one `/proc` reader.

use anyhow::Context;
use serde::Serialize;

/// Resident set size now and its high-water mark, in KiB.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rss {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

impl Rss {
    pub fn now() -> anyhow::Result<Self> {
        let (rss, peak) = zpm_host::procfs::rss_and_peak(std::process::id())
            .context("reading /proc/self/status for the process RSS")?;
        Ok(Self {
            rss_kib: rss / 1024,
            peak_kib: peak / 1024,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_process_has_rss() {
        let rss = Rss::now().expect("/proc/self/status on Linux");
        assert!(rss.rss_kib > 0 && rss.peak_kib >= rss.rss_kib);
    }
}
