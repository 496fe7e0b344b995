//! Which processes belong to an app: a pure function over one snapshot of /proc, so the
//! rules can be tested with made-up processes.
//!
//! An app is its root process, every descendant of it, and every member of its process
//! group (the spawner starts each app as a group leader, pgid = pid) with their own
//! descendants. The group catches what the descendant walk misses: a grandchild whose
//! parent died is re-parented to the spawner (a subreaper) or init, which breaks the ppid
//! chain but not the group. The group id cannot have been recycled meanwhile: the kernel
//! keeps a pid allocated while any process still uses it as its group id. A process that
//! leaves the group (setsid, setpgid) and loses its parent is out of reach.

use std::collections::{HashMap, HashSet};
use zpm_host::procfs::ProcStat;

/// One app's processes in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// The root pid is a live process in the snapshot.
    pub root_alive: bool,
    /// Indices into the snapshot of the tree's live processes (zombies are left out).
    pub members: Vec<usize>,
}

/// The tree of every root in `roots`, in order, from one snapshot. Linear in the snapshot
/// size plus the trees' sizes.
pub fn build_trees(stats: &[ProcStat], roots: &[u32]) -> Vec<Tree> {
    let wanted: HashSet<u32> = roots.iter().copied().collect();
    let mut by_pid = HashMap::with_capacity(stats.len());
    let mut children: HashMap<u32, Vec<usize>> = HashMap::with_capacity(stats.len());
    let mut groups: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, s) in stats.iter().enumerate() {
        by_pid.insert(s.pid, i);
        children.entry(s.ppid).or_default().push(i);
        if wanted.contains(&s.pgrp) {
            groups.entry(s.pgrp).or_default().push(i);
        }
    }
    // Which root last visited each process: one allocation for all trees, and no process
    // counted twice in one tree (a group member is usually a descendant too).
    let mut visited = vec![usize::MAX; stats.len()];
    let mut stack = Vec::new();
    roots
        .iter()
        .enumerate()
        .map(|(k, &root)| {
            let root_index = by_pid.get(&root).copied();
            stack.extend(root_index);
            stack.extend(groups.get(&root).into_iter().flatten().copied());
            let mut members = Vec::new();
            while let Some(i) = stack.pop() {
                if visited[i] == k {
                    continue;
                }
                visited[i] = k;
                let s = &stats[i];
                if s.alive() {
                    members.push(i);
                }
                // A zombie has no children (they were re-parented when it exited), but
                // walking on costs nothing and stays right if a kernel ever differs.
                stack.extend(children.get(&s.pid).into_iter().flatten().copied());
            }
            Tree {
                root_alive: root_index.is_some_and(|i| stats[i].alive()),
                members,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: u32, parent: u32, pgrp: u32) -> ProcStat {
        ProcStat {
            pid,
            ppid: parent,
            pgrp,
            state: 'S',
            start_time: u64::from(pid),
            utime: 0,
            stime: 0,
            rss_bytes: 4096,
        }
    }

    fn pids(stats: &[ProcStat], tree: &Tree) -> Vec<u32> {
        let mut pids: Vec<u32> = tree.members.iter().map(|&i| stats[i].pid).collect();
        pids.sort_unstable();
        pids
    }

    #[test]
    fn descendants_and_orphaned_group_members() {
        let spawner = 10;
        let stats = [
            proc(1, 0, 1),
            proc(spawner, 1, spawner),
            // app 100: child 101, grandchild 102 via 101
            proc(100, spawner, 100),
            proc(101, 100, 100),
            proc(102, 101, 100),
            // 103's parent died: re-parented to the spawner, still in group 100
            proc(103, spawner, 100),
            // 104 is 103's child that moved to its own group: reached through 103
            proc(104, 103, 104),
            // app 200, whose root died: only its orphan remains
            proc(201, spawner, 200),
            // unrelated
            proc(300, 1, 300),
            proc(301, 300, 300),
        ];
        let trees = build_trees(&stats, &[100, 200, 999]);
        assert_eq!(pids(&stats, &trees[0]), [100, 101, 102, 103, 104]);
        assert!(trees[0].root_alive);
        assert_eq!(pids(&stats, &trees[1]), [201]);
        assert!(!trees[1].root_alive);
        assert_eq!(trees[2].members, Vec::<usize>::new());
    }

    #[test]
    fn zombies_are_not_members() {
        let mut stats = [proc(100, 1, 100), proc(101, 100, 100)];
        stats[1].state = 'Z';
        let trees = build_trees(&stats, &[100]);
        assert_eq!(pids(&stats, &trees[0]), [100]);
        stats[0].state = 'Z';
        let trees = build_trees(&stats, &[100]);
        assert!(!trees[0].root_alive);
        assert!(trees[0].members.is_empty());
    }

    #[test]
    fn a_ppid_loop_in_bad_data_terminates() {
        let stats = [proc(100, 101, 100), proc(101, 100, 100)];
        let trees = build_trees(&stats, &[100]);
        assert_eq!(pids(&stats, &trees[0]), [100, 101]);
    }
}
