//! Prometheus text exposition (format 0.0.4) of a metrics report and of zpm itself. Each
//! scrape builds a fresh registry from the latest snapshot: the values are sampled by the
//! agent, not counted in place, and a deleted app must disappear from the next scrape.
//! Label values (app names, namespaces) are user data; the encoder escapes `\`, `"` and
//! newlines in them.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use zpm_proto::metrics::MetricsReport;

/// The `Content-Type` of what [`render`] returns.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// What God knows of an app, to label its metrics and report its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLabel {
    pub id: u32,
    pub name: String,
    pub namespace: String,
    pub status: String,
    pub restarts: u32,
    pub uptime_ms: u64,
}

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;
type IntGauge = Gauge<u64, AtomicU64>;

fn app_labels(id: u32, label: Option<&AppLabel>) -> Labels {
    vec![
        ("id", id.to_string()),
        ("name", label.map(|l| l.name.clone()).unwrap_or_default()),
        (
            "namespace",
            label.map(|l| l.namespace.clone()).unwrap_or_default(),
        ),
    ]
}

/// The text of one scrape. `own`: `(role, pid, resident bytes)` of zpm's own processes
/// (God and each agent); `bus_dropped`: events the bus dropped for lack of credit.
/// Sampled metrics come for the apps in `report`, state metrics for the apps in `apps`
/// (an app missing from `apps` is labelled with an empty name and namespace).
pub fn render(
    report: &MetricsReport,
    apps: &[AppLabel],
    own: &[(String, u32, u64)],
    bus_dropped: u64,
) -> String {
    let mut registry = Registry::default();
    let by_id: HashMap<u32, &AppLabel> = apps.iter().map(|a| (a.id, a)).collect();

    let cpu = Family::<Labels, FloatGauge>::default();
    let memory = Family::<Labels, IntGauge>::default();
    let processes = Family::<Labels, IntGauge>::default();
    for a in &report.apps {
        let labels = app_labels(a.id, by_id.get(&a.id).copied());
        cpu.get_or_create(&labels).set(f64::from(a.cpu));
        memory.get_or_create(&labels).set(a.memory);
        processes.get_or_create(&labels).set(u64::from(a.processes));
    }
    registry.register(
        "zpm_app_cpu_percent",
        "CPU used by the app's process tree, percent of one core",
        cpu,
    );
    registry.register(
        "zpm_app_memory_bytes",
        "Resident memory of the app's process tree",
        memory,
    );
    registry.register(
        "zpm_app_processes",
        "Live processes in the app's process tree",
        processes,
    );

    let restarts = Family::<Labels, Counter>::default();
    let status = Family::<Labels, IntGauge>::default();
    let uptime = Family::<Labels, FloatGauge>::default();
    for a in apps {
        let labels = app_labels(a.id, Some(a));
        restarts
            .get_or_create(&labels)
            .inc_by(u64::from(a.restarts));
        uptime
            .get_or_create(&labels)
            .set(a.uptime_ms as f64 / 1000.0);
        let mut labels = labels;
        labels.push(("status", a.status.clone()));
        status.get_or_create(&labels).set(1);
    }
    registry.register("zpm_app_restarts", "Restarts of the app", restarts);
    registry.register("zpm_app_status", "1 for the app's current status", status);
    registry.register(
        "zpm_app_uptime_seconds",
        "Time since the app's current process started",
        uptime,
    );

    let resident = Family::<Labels, IntGauge>::default();
    for (role, _pid, rss) in own {
        resident
            .get_or_create(&vec![("role", role.clone())])
            .set(*rss);
    }
    registry.register(
        "zpm_process_resident_memory_bytes",
        "Resident memory of zpm's own processes, by role",
        resident,
    );
    let dropped = Counter::<u64>::default();
    dropped.inc_by(bus_dropped);
    registry.register(
        "zpm_bus_dropped_events",
        "Bus events dropped for subscribers out of credit",
        dropped,
    );

    register_host(&mut registry, report);
    let mut text = String::new();
    // Writing into a String cannot fail; an encoder error would be a bug in the crate,
    // and a partial page is still better than none.
    if let Err(e) = prometheus_text::encode(&mut text, &registry) {
        tracing::warn!(error = %e, "prometheus encoding failed");
    }
    text
}

fn register_host(registry: &mut Registry, report: &MetricsReport) {
    let host = &report.host;
    registry.register(
        "zpm_host_cpus",
        "CPU cores",
        int_gauge(u64::from(host.cpus)),
    );
    registry.register(
        "zpm_host_cpu_percent",
        "Percent of all cores busy",
        float_gauge(f64::from(host.cpu)),
    );
    registry.register(
        "zpm_host_memory_total_bytes",
        "Host memory",
        int_gauge(host.mem_total),
    );
    registry.register(
        "zpm_host_memory_available_bytes",
        "Host memory available to start new work without swapping",
        int_gauge(host.mem_available),
    );
    let loads = [
        ("zpm_host_load1", "Load average over 1 minute"),
        ("zpm_host_load5", "Load average over 5 minutes"),
        ("zpm_host_load15", "Load average over 15 minutes"),
    ];
    for ((name, help), value) in loads.into_iter().zip(host.load) {
        registry.register(name, help, float_gauge(f64::from(value)));
    }
    registry.register(
        "zpm_host_sampled_at_seconds",
        "When the host and app metrics were sampled, seconds since the epoch",
        float_gauge(report.at_ms as f64 / 1000.0),
    );
}

fn int_gauge(value: u64) -> IntGauge {
    let gauge = IntGauge::default();
    gauge.set(value);
    gauge
}

fn float_gauge(value: f64) -> FloatGauge {
    let gauge = FloatGauge::default();
    gauge.set(value);
    gauge
}

#[cfg(test)]
mod tests;
