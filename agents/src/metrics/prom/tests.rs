//! The text is read back by a small parser of the exposition format, so escaping is checked
//! by what a scraper would see, not by string matching.
#![allow(clippy::unwrap_used)]

use super::*;
use std::collections::BTreeMap;
use zpm_proto::metrics::{AppMetrics, HostMetrics};

#[derive(Debug, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Samples and `# TYPE` lines of a Prometheus 0.0.4 text page; panics on anything else.
fn parse(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let (mut samples, mut types) = (Vec::new(), BTreeMap::new());
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_owned(), kind.to_owned());
        } else if line.starts_with("# HELP ") {
        } else {
            samples.push(parse_sample(line));
        }
    }
    (samples, types)
}

fn parse_sample(line: &str) -> Sample {
    let name_end = line.find(['{', ' ']).unwrap();
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            let (key, after) = inner.split_once("=\"").unwrap();
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                let (i, c) = chars.next().expect("unterminated label value");
                match c {
                    '"' => break i,
                    '\\' => match chars.next().unwrap().1 {
                        'n' => value.push('\n'),
                        c @ ('\\' | '"') => value.push(c),
                        c => panic!("bad escape \\{c} in {line:?}"),
                    },
                    '\n' => panic!("raw newline in {line:?}"),
                    c => value.push(c),
                }
            };
            labels.insert(key.trim_start_matches(',').to_owned(), value);
            inner = &after[end + 1..];
            if let Some(r) = inner.strip_prefix('}') {
                rest = r;
                break;
            }
        }
    }
    let value = rest.trim().parse().unwrap();
    Sample {
        name,
        labels,
        value,
    }
}

fn report() -> MetricsReport {
    MetricsReport {
        at_ms: 1_700_000_000_500,
        host: HostMetrics {
            cpus: 2,
            cpu: 37.5,
            mem_total: 8 << 30,
            mem_available: 5 << 30,
            load: [1.5, 0.75, 0.25],
        },
        apps: vec![
            AppMetrics {
                id: 0,
                pid: Some(4242),
                cpu: 150.0,
                memory: 40 << 20,
                processes: 3,
            },
            AppMetrics {
                id: 9,
                pid: Some(99),
                cpu: 1.0,
                memory: 1 << 20,
                processes: 1,
            },
        ],
    }
}

fn hostile_label() -> AppLabel {
    AppLabel {
        id: 0,
        name: "web \"prod\"\nx=\"1\"} 666\n\\".into(),
        namespace: "ns,{a=\"b\"}".into(),
        status: "online".into(),
        restarts: 4,
        uptime_ms: 90_500,
    }
}

fn find<'a>(samples: &'a [Sample], name: &str, id: &str) -> &'a Sample {
    samples
        .iter()
        .find(|s| s.name == name && s.labels.get("id").map(String::as_str) == Some(id))
        .unwrap_or_else(|| panic!("no {name} for id {id}"))
}

#[test]
fn user_data_in_labels_reads_back_verbatim() {
    let label = hostile_label();
    let text = render(&report(), std::slice::from_ref(&label), &[], 0);
    let (samples, _) = parse(&text);
    for name in [
        "zpm_app_cpu_percent",
        "zpm_app_memory_bytes",
        "zpm_app_restarts_total",
        "zpm_app_status",
        "zpm_app_uptime_seconds",
    ] {
        let s = find(&samples, name, "0");
        assert_eq!(s.labels["name"], label.name, "{name}");
        assert_eq!(s.labels["namespace"], label.namespace, "{name}");
    }
    // The injected `} 666` line did not become a sample of its own.
    assert!(samples.iter().all(|s| s.name.starts_with("zpm_")));
}

#[test]
fn every_metric_with_its_value_and_type() {
    let own = [
        ("god".to_owned(), 10, 7 << 20),
        ("spawner".to_owned(), 11, 3 << 20),
    ];
    let text = render(&report(), &[hostile_label()], &own, 12);
    let (samples, types) = parse(&text);
    let value = |name: &str, id: &str| find(&samples, name, id).value;
    assert!((value("zpm_app_cpu_percent", "0") - 150.0).abs() < 1e-9);
    assert!((value("zpm_app_memory_bytes", "0") - f64::from(40 << 20)).abs() < 1e-9);
    assert!((value("zpm_app_processes", "0") - 3.0).abs() < 1e-9);
    assert!((value("zpm_app_restarts_total", "0") - 4.0).abs() < 1e-9);
    assert!((value("zpm_app_uptime_seconds", "0") - 90.5).abs() < 1e-9);
    let status = find(&samples, "zpm_app_status", "0");
    assert_eq!(status.labels["status"], "online");
    assert!((status.value - 1.0).abs() < 1e-9);
    // Sampled but unknown to God: labelled by id alone.
    assert_eq!(
        find(&samples, "zpm_app_memory_bytes", "9").labels["name"],
        ""
    );

    let single = |name: &str| {
        let found: Vec<_> = samples.iter().filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "{name}");
        found[0].value
    };
    assert!((single("zpm_bus_dropped_events_total") - 12.0).abs() < 1e-9);
    assert!((single("zpm_host_cpus") - 2.0).abs() < 1e-9);
    assert!((single("zpm_host_cpu_percent") - 37.5).abs() < 1e-9);
    assert!((single("zpm_host_memory_total_bytes") - 8.0 * f64::from(1 << 30)).abs() < 1e-9);
    assert!((single("zpm_host_memory_available_bytes") - 5.0 * f64::from(1 << 30)).abs() < 1e-9);
    assert!((single("zpm_host_load1") - 1.5).abs() < 1e-9);
    assert!((single("zpm_host_load15") - 0.25).abs() < 1e-9);
    assert!((single("zpm_host_sampled_at_seconds") - 1_700_000_000.5).abs() < 1e-3);
    let god = samples
        .iter()
        .find(|s| s.name == "zpm_process_resident_memory_bytes" && s.labels["role"] == "god")
        .unwrap();
    assert!((god.value - f64::from(7 << 20)).abs() < 1e-9);

    assert_eq!(types["zpm_app_restarts_total"], "counter");
    assert_eq!(types["zpm_bus_dropped_events_total"], "counter");
    assert_eq!(types["zpm_app_memory_bytes"], "gauge");
    // Every sample belongs to a declared family.
    for s in &samples {
        assert!(types.contains_key(&s.name), "{} has no TYPE", s.name);
    }
}

#[test]
fn an_empty_host_renders() {
    let empty = MetricsReport {
        at_ms: 0,
        host: HostMetrics {
            cpus: 0,
            cpu: 0.0,
            mem_total: 0,
            mem_available: 0,
            load: [0.0; 3],
        },
        apps: vec![],
    };
    let (samples, _) = parse(&render(&empty, &[], &[], 0));
    assert!(samples.iter().any(|s| s.name == "zpm_host_cpus"));
}
