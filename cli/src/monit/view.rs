//! Drawing: a pure function of [`MonitState`] into a ratatui frame. Every string that came
//! from an app or the bus goes through [`printable`] first: a name or log line holding
//! escape sequences must never drive the terminal.

use super::state::{MonitState, Samples};
use super::tail::{LogLine, Tail};
use crate::output::{printable, short_duration, status_name};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table, TableState};
use std::collections::VecDeque;
use zpm_proto::{LogStream, ProcessInfo, ProcessStatus};

const FOOTER: u16 = 3;
const KEYS: &str = "↑/↓ j/k select   r restart   s stop   q quit";
/// A sparkline of cpu is scaled to at least one full core (in tenths of a percent), so an
/// idle app draws a flat line instead of noise blown up to full height.
const CPU_SCALE: u64 = 1000;

pub fn render(state: &MonitState, frame: &mut Frame) {
    let area = frame.area();
    let [table, detail, footer] = Layout::vertical([
        Constraint::Length(table_height(state, area)),
        Constraint::Min(0),
        Constraint::Length(FOOTER),
    ])
    .areas(area);
    render_table(state, frame, table);
    let [graphs, logs] =
        Layout::horizontal([Constraint::Percentage(30), Constraint::Fill(1)]).areas(detail);
    render_graphs(state, frame, graphs);
    render_logs(state, frame, logs);
    render_footer(state, frame, footer);
}

/// Borders, header and a row per app, at most half of what the footer leaves.
fn table_height(state: &MonitState, area: Rect) -> u16 {
    let rows = u16::try_from(state.apps.len().max(1)).unwrap_or(u16::MAX);
    let half = area.height.saturating_sub(FOOTER) / 2;
    rows.saturating_add(3).min(half.max(4))
}

fn render_table(state: &MonitState, frame: &mut Frame, area: Rect) {
    let header = Row::new(["id", "name", "status", "cpu", "mem", "↺", "uptime"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Length(5),
        Constraint::Fill(1),
        Constraint::Length(15),
        Constraint::Length(7),
        Constraint::Length(10),
        Constraint::Length(5),
        Constraint::Length(7),
    ];
    let rows = state.apps.iter().map(|app| app_row(state, app));
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::bordered().title(" zpm monit "))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶ ");
    let mut selection = TableState::new().with_selected(state.selected_index());
    frame.render_stateful_widget(table, area, &mut selection);
}

fn app_row<'a>(state: &MonitState, app: &'a ProcessInfo) -> Row<'a> {
    // A sample of the bus is fresher than the list, which God fills at the last `app.list`.
    let (cpu, memory) = match state.samples.get(&app.id).and_then(Samples::latest) {
        Some((cpu, memory)) => (Some(cpu), Some(memory)),
        None => (app.cpu, app.memory),
    };
    Row::new([
        Cell::from(app.id.to_string()),
        Cell::from(printable(&app.name)),
        Cell::from(status_name(app.status)).style(status_style(app.status)),
        Cell::from(cpu.map_or_else(dash, |c| format!("{c:.1}%"))),
        Cell::from(memory.map_or_else(dash, human_bytes)),
        Cell::from(app.restarts.to_string()),
        Cell::from(uptime(state, app)),
    ])
}

fn dash() -> String {
    "-".to_owned()
}

/// `zpm ls`'s colours (see `output::status_colour`): comfy-table's green is crossterm's
/// bright green, which ratatui calls `LightGreen`.
fn status_style(status: ProcessStatus) -> Style {
    let colour = match status {
        ProcessStatus::Online => Color::LightGreen,
        ProcessStatus::Errored => Color::LightRed,
        ProcessStatus::Launching | ProcessStatus::Stopping | ProcessStatus::WaitingRestart => {
            Color::LightYellow
        }
        ProcessStatus::Stopped => Color::DarkGray,
        ProcessStatus::Unknown => Color::LightMagenta,
    };
    Style::new().fg(colour)
}

/// The uptime God gave at the last `app.list`, plus the time since, for an online app.
fn uptime(state: &MonitState, app: &ProcessInfo) -> String {
    let since = state
        .now
        .saturating_duration_since(state.listed_at)
        .as_millis() as u64;
    match app.uptime_ms {
        Some(ms) if app.status == ProcessStatus::Online => short_duration(ms + since),
        Some(ms) => short_duration(ms),
        None => dash(),
    }
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn render_graphs(state: &MonitState, frame: &mut Frame, area: Rect) {
    let [cpu_area, memory_area] = Layout::vertical([Constraint::Fill(1); 2]).areas(area);
    let samples = state.selected.and_then(|id| state.samples.get(&id));
    let latest = samples.and_then(Samples::latest);
    let width = usize::from(area.width.saturating_sub(2));
    let cpu = samples.map(|s| last(&s.cpu, width)).unwrap_or_default();
    let memory = samples.map(|s| last(&s.memory, width)).unwrap_or_default();
    let cpu_title = latest.map_or_else(|| " cpu ".to_owned(), |(c, _)| format!(" cpu {c:.1}% "));
    let memory_title = latest.map_or_else(
        || " memory ".to_owned(),
        |(_, m)| format!(" memory {} ", human_bytes(m)),
    );
    let cpu_max = cpu.iter().copied().max().unwrap_or(0).max(CPU_SCALE);
    let graph = |title: String, colour: Color| {
        Sparkline::default()
            .block(Block::bordered().title(title))
            .style(Style::new().fg(colour))
    };
    frame.render_widget(
        graph(cpu_title, Color::LightCyan).data(cpu).max(cpu_max),
        cpu_area,
    );
    frame.render_widget(
        graph(memory_title, Color::LightMagenta).data(memory),
        memory_area,
    );
}

/// The last `n` values: the newest samples that fit the width.
fn last(values: &VecDeque<u64>, n: usize) -> Vec<u64> {
    let skip = values.len().saturating_sub(n);
    values.iter().skip(skip).copied().collect()
}

fn render_logs(state: &MonitState, frame: &mut Frame, area: Rect) {
    let name = state
        .selected_app()
        .map_or_else(String::new, |app| printable(&app.name));
    let block = Block::bordered().title(format!(" logs {name} "));
    let height = usize::from(area.height.saturating_sub(2));
    let lines = match state.selected.and_then(|id| state.tails.get(id)) {
        Some(tail) => log_lines(tail, height),
        None => vec![Line::styled(
            "no output since monit started",
            Style::new().fg(Color::DarkGray),
        )],
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The newest `height` lines, each marked with its stream, unfinished lines last.
fn log_lines(tail: &Tail, height: usize) -> Vec<Line<'static>> {
    let partial: Vec<LogLine> = tail.partial_lines().collect();
    let total = tail.lines.len() + partial.len();
    tail.lines
        .iter()
        .chain(&partial)
        .skip(total.saturating_sub(height))
        .map(log_line)
        .collect()
}

fn log_line(line: &LogLine) -> Line<'static> {
    let (mark, colour) = match line.stream {
        LogStream::Out => ("out ", Color::DarkGray),
        LogStream::Err => ("err ", Color::LightRed),
    };
    // A tab is harmless as spaces; every other control character is shown escaped.
    let text = printable(&line.text.replace('\t', "    "));
    Line::from(vec![
        Span::styled(mark, Style::new().fg(colour)),
        Span::raw(text),
    ])
}

fn render_footer(state: &MonitState, frame: &mut Frame, area: Rect) {
    let status = match &state.status {
        Some(status) if status.error => {
            Line::styled(printable(&status.text), Style::new().fg(Color::LightRed))
        }
        Some(status) => Line::raw(printable(&status.text)),
        None => Line::raw(""),
    };
    let keys = Line::styled(KEYS, Style::new().fg(Color::DarkGray));
    frame.render_widget(Paragraph::new(vec![host_line(state), status, keys]), area);
}

fn host_line(state: &MonitState) -> Line<'static> {
    let Some((host, m)) = state.host_metrics() else {
        return Line::raw("host: no metrics report yet");
    };
    let used = m.mem_total.saturating_sub(m.mem_available);
    Line::raw(format!(
        "host {}   cpu {:.0}% of {} cores   mem {} / {}   load {:.2} {:.2} {:.2}",
        printable(host),
        m.cpu,
        m.cpus,
        human_bytes(used),
        human_bytes(m.mem_total),
        m.load[0],
        m.load[1],
        m.load[2],
    ))
}

#[cfg(test)]
mod tests;
