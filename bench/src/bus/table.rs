//! The human-readable table of the bus results.

use super::{Delivery, Results, Stall};
use crate::report::{Table, mib, rate, thousands, verdict};

pub fn print(results: &Results) {
    let yielding = match results.reader_yield_every {
        0 => String::new(),
        n => format!(", readers yield every {n} events"),
    };
    let title = format!(
        "zpm-bus over ipc: {} B per event incl. topic, credit {}, publisher kept <= {} events \
         ahead of each reader's received + known-lost count{yielding}",
        results.event_bytes, results.credit, results.pacing_window
    );
    let mut table = Table::new(title, &["case", "measure", "value", "target", "status"]);
    delivery_rows(&mut table, "1→1", &results.one_to_one);
    let fan_out = format!("1→{}", results.fan_out.subscribers);
    delivery_rows(&mut table, &fan_out, &results.fan_out);
    stall_rows(&mut table, &results.stalled);
    table.print();
}

fn delivery_rows(table: &mut Table, case: &str, d: &Delivery) {
    let (target, status) = match d.target_events_per_s {
        Some(t) => (format!(">= {}", rate(t)), verdict(d.events_per_s >= t)),
        None => ("-".to_owned(), "-".to_owned()),
    };
    let published = format!(
        "{} events, {:.2} s",
        thousands(d.events_published),
        d.elapsed_s
    );
    table.row(vec![
        case.into(),
        "published".into(),
        published,
        "-".into(),
        "-".into(),
    ]);
    let label = if d.subscribers > 1 {
        "delivered (aggregate)"
    } else {
        "delivered"
    };
    table.row(vec![
        case.into(),
        label.into(),
        rate(d.events_per_s),
        target,
        status,
    ]);
    loss_rows(table, case, d);
}

fn loss_rows(table: &mut Table, case: &str, d: &Delivery) {
    table.row(vec![
        case.into(),
        "loss (published - received)".into(),
        thousands(d.loss),
        "0".into(),
        verdict(d.loss == 0),
    ]);
    let seen = format!("{} / {}", thousands(d.gaps), thousands(d.dropped_reported));
    table.row(vec![
        case.into(),
        "gaps / dropped reported".into(),
        seen,
        "-".into(),
        "-".into(),
    ]);
    if d.pacing_timeouts > 0 {
        table.row(vec![
            case.into(),
            "pacing waits given up".into(),
            thousands(d.pacing_timeouts),
            "0".into(),
            verdict(false),
        ]);
    }
}

fn stall_rows(table: &mut Table, s: &Stall) {
    let case = "stall";
    let published = format!(
        "{} events, {:.2} s",
        thousands(s.events_published),
        s.live.elapsed_s
    );
    table.row(vec![
        case.into(),
        "published".into(),
        published,
        "-".into(),
        "-".into(),
    ]);
    let growth_ok = s.rss_growth_kib <= s.target_rss_growth_kib;
    let target = format!("<= {}", mib(s.target_rss_growth_kib));
    table.row(vec![
        case.into(),
        s.note.into(),
        mib(s.rss_growth_kib),
        target,
        verdict(growth_ok),
    ]);
    let rss = format!(
        "{} -> {}, peak sampled +{}",
        mib(s.rss_before_kib.cast_signed()),
        mib(s.rss_after_kib.cast_signed()),
        mib(s.rss_peak_growth_kib)
    );
    table.row(vec![
        case.into(),
        "  process RSS before -> after".into(),
        rss,
        "-".into(),
        "-".into(),
    ]);
    let stalled = format!(
        "sent {}, dropped {}, lag {}",
        thousands(s.stalled_sent),
        thousands(s.stalled_dropped),
        s.stalled_lag
    );
    table.row(vec![
        case.into(),
        format!("stalled subscriber (credit {})", s.stalled_credit),
        stalled,
        "-".into(),
        "-".into(),
    ]);
    table.row(vec![
        case.into(),
        "live subscriber delivered".into(),
        rate(s.live.events_per_s),
        "-".into(),
        "-".into(),
    ]);
    loss_rows(table, "stall live", &s.live);
}
