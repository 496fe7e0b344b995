//! Reading processes from /proc: resident memory, open fds, zombie children.

fn kb_field(file: &str, key: &str) -> f64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| {
                    v.split_whitespace()
                        .next()
                        .and_then(|kb| kb.parse::<f64>().ok())
                })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resident set size of `pid` in MB (VmRSS): shared pages counted in full.
pub fn rss_mb(pid: u32) -> f64 {
    kb_field(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// Proportional set size in MB: shared pages split among the processes mapping them.
pub fn pss_mb(pid: u32) -> f64 {
    kb_field(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Zombie processes whose parent is `pid`.
pub fn zombie_children(parent: u32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
            state == Some("Z") && ppid == Some(parent)
        })
        .count()
}

/// Live processes whose argv contains `marker`.
pub fn marked(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            (String::from_utf8_lossy(&cmdline).contains(marker) && rss_mb(pid) > 0.0).then_some(pid)
        })
        .collect()
}
