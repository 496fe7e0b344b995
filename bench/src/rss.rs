//! This process's resident memory, read from /proc/self/status (Linux only).

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
        let status = std::fs::read_to_string("/proc/self/status")
            .context("reading /proc/self/status for the process RSS")?;
        parse(&status)
    }
}

fn parse(status: &str) -> anyhow::Result<Rss> {
    Ok(Rss {
        rss_kib: field_kib(status, "VmRSS:")?,
        peak_kib: field_kib(status, "VmHWM:")?,
    })
}

fn field_kib(status: &str, name: &str) -> anyhow::Result<u64> {
    let line = status
        .lines()
        .find(|line| line.starts_with(name))
        .with_context(|| format!("no {name} line in /proc/self/status"))?;
    let value = line[name.len()..]
        .split_whitespace()
        .next()
        .with_context(|| format!("empty {name} line in /proc/self/status"))?;
    value
        .parse()
        .with_context(|| format!("reading the {name} value {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_peak() {
        let status = "Name:\tzpm-bench\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        let rss = parse(status).expect("a well-formed status");
        assert_eq!((rss.rss_kib, rss.peak_kib), (10_240, 20_480));
    }

    #[test]
    fn live_process_has_rss() {
        let rss = Rss::now().expect("/proc/self/status on Linux");
        assert!(rss.rss_kib > 0);
    }
}
