//! The cpu arithmetic on made-up snapshots: time is given, not waited for.

use super::*;
use std::time::Duration;

fn proc(pid: u32, parent: u32, start_time: u64, ticks: u64) -> ProcStat {
    ProcStat {
        pid,
        ppid: parent,
        pgrp: 100,
        state: 'R',
        start_time,
        utime: ticks / 2,
        stime: ticks - ticks / 2,
        rss_bytes: 1 << 20,
    }
}

/// Ticks of one core busy for one second.
fn second() -> u64 {
    procfs::ticks_per_second()
}

fn cpu_of(sampler: &mut Sampler, at: Instant, stats: &[ProcStat]) -> f32 {
    let apps = sampler.account(at, stats, &[(1, 100)]);
    apps[0].cpu
}

#[test]
fn first_sample_is_zero_then_a_rate_of_one_core() {
    let t0 = Instant::now();
    let mut s = Sampler::new();
    assert!(cpu_of(&mut s, t0, &[proc(100, 1, 5, 40 * second())]).abs() < f32::EPSILON);
    let later = t0 + Duration::from_secs(2);
    let cpu = cpu_of(&mut s, later, &[proc(100, 1, 5, 41 * second())]);
    assert!((cpu - 50.0).abs() < 0.01, "{cpu}");
}

#[test]
fn a_recycled_pid_never_spikes() {
    let t0 = Instant::now();
    let mut s = Sampler::new();
    cpu_of(&mut s, t0, &[proc(100, 1, 5, second())]);
    // Same pid, another process (later start time) that has used far more cpu.
    let t1 = t0 + Duration::from_secs(1);
    let cpu = cpu_of(&mut s, t1, &[proc(100, 1, 9, 500 * second())]);
    assert!(cpu.abs() < f32::EPSILON, "{cpu}");
    // From then on it is measured against its own previous sample.
    let t2 = t1 + Duration::from_secs(1);
    let cpu = cpu_of(&mut s, t2, &[proc(100, 1, 9, 501 * second())]);
    assert!((cpu - 100.0).abs() < 0.01, "{cpu}");
}

#[test]
fn a_new_child_counts_from_its_second_sample_and_the_tree_adds_up() {
    let t0 = Instant::now();
    let mut s = Sampler::new();
    cpu_of(&mut s, t0, &[proc(100, 1, 5, 0)]);
    let t1 = t0 + Duration::from_secs(1);
    let tree = [proc(100, 1, 5, second()), proc(101, 100, 7, 30 * second())];
    let apps = s.account(t1, &tree, &[(1, 100)]);
    assert!((apps[0].cpu - 100.0).abs() < 0.01, "{}", apps[0].cpu);
    assert_eq!(apps[0].processes, 2);
    assert_eq!(apps[0].memory, 2 << 20);
    let t2 = t1 + Duration::from_secs(1);
    let tree = [
        proc(100, 1, 5, 2 * second()),
        proc(101, 100, 7, 31 * second()),
    ];
    assert!((cpu_of(&mut s, t2, &tree) - 200.0).abs() < 0.01);
}

#[test]
fn an_app_new_to_the_sampler_reports_zero_even_with_known_processes() {
    let t0 = Instant::now();
    let mut s = Sampler::new();
    s.account(t0, &[proc(100, 1, 5, 0)], &[(1, 100)]);
    // Same process under a new id (e.g. the app was deleted and re-added around it).
    let t1 = t0 + Duration::from_secs(1);
    let apps = s.account(t1, &[proc(100, 1, 5, second())], &[(2, 100)]);
    assert!(apps[0].cpu.abs() < f32::EPSILON);
}

#[test]
fn a_dead_root_reports_no_pid() {
    let mut s = Sampler::new();
    let mut root = proc(100, 1, 5, 0);
    root.state = 'Z';
    let apps = s.account(Instant::now(), &[root], &[(1, 100)]);
    assert_eq!(apps[0].pid, None);
    assert_eq!(apps[0].processes, 0);
}
