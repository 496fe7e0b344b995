use super::*;
use crate::monit::state::tests::{app, report};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::{Buffer, Cell};
use std::time::{Duration, Instant};
use zpm_proto::LogEvent;

fn draw(state: &MonitState, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| render(state, frame)).unwrap();
    terminal.backend().buffer().clone()
}

fn lines(buffer: &Buffer) -> Vec<String> {
    let width = usize::from(buffer.area.width);
    buffer
        .content()
        .chunks(width)
        .map(|row| row.iter().map(Cell::symbol).collect())
        .collect()
}

fn line_with<'a>(lines: &'a [String], text: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?} in\n{}", lines.join("\n")))
}

/// Where `text` starts in the buffer, cell by cell.
fn position(buffer: &Buffer, text: &str) -> (u16, u16) {
    let width = usize::from(buffer.area.width);
    let len = text.chars().count();
    for (y, row) in buffer.content().chunks(width).enumerate() {
        for x in 0..row.len() {
            let found: String = row[x..].iter().take(len).map(Cell::symbol).collect();
            if found == text {
                return (x as u16, y as u16);
            }
        }
    }
    panic!("{text:?} is not drawn:\n{}", lines(buffer).join("\n"));
}

fn log(id: u32, stream: LogStream, data: &str) -> LogEvent {
    LogEvent {
        line: 0,
        id,
        name: "x".into(),
        stream,
        offset: 0,
        data: data.as_bytes().to_vec(),
    }
}

fn sample_state() -> MonitState {
    let now = Instant::now();
    let mut state = MonitState::new(now);
    let mut stopped = app(4, "worker", ProcessStatus::Stopped);
    stopped.uptime_ms = None;
    let mut errored = app(9, "cron", ProcessStatus::Errored);
    errored.cpu = Some(3.0);
    errored.memory = Some(2 << 20);
    state.set_apps(
        vec![app(1, "web", ProcessStatus::Online), stopped, errored],
        now,
    );
    state
}

#[test]
fn the_table_shows_every_app_its_status_and_the_selection() {
    let mut state = sample_state();
    state.move_selection(1);
    let shown = lines(&draw(&state, 100, 30));
    let web = line_with(&shown, "web");
    assert!(web.contains("online") && web.contains("5s"), "{web}");
    assert!(!web.contains('▶'), "{web}");
    let worker = line_with(&shown, "worker");
    assert!(
        worker.contains("▶") && worker.contains("stopped"),
        "{worker}"
    );
    let cron = line_with(&shown, "cron");
    assert!(cron.contains("errored") && cron.contains("3.0%"), "{cron}");
    assert!(cron.contains("2.0 MiB"), "{cron}");
    assert!(web.contains(" - "), "no metrics yet shows a dash: {web}");
}

#[test]
fn statuses_are_coloured_like_ls() {
    let state = sample_state();
    let buffer = draw(&state, 100, 30);
    for (status, colour) in [
        ("online", Color::LightGreen),
        ("stopped", Color::DarkGray),
        ("errored", Color::LightRed),
    ] {
        assert_eq!(buffer[position(&buffer, status)].fg, colour, "{status}");
    }
}

#[test]
fn uptime_of_an_online_app_grows_with_the_clock() {
    let mut state = sample_state();
    state.now = state.listed_at + Duration::from_secs(120);
    let shown = lines(&draw(&state, 100, 30));
    assert!(line_with(&shown, "web").contains("2m"));
    assert!(line_with(&shown, "worker").contains(" - "));
}

#[test]
fn metrics_fill_the_row_the_graph_titles_and_the_host_line() {
    let mut state = sample_state();
    state.apply_metrics("box", report(&[(1, 12.5, 3 << 20)]));
    let shown = lines(&draw(&state, 120, 30));
    let web = line_with(&shown, "web");
    assert!(web.contains("12.5%") && web.contains("3.0 MiB"), "{web}");
    line_with(&shown, "cpu 12.5%");
    line_with(&shown, "memory 3.0 MiB");
    let host = line_with(&shown, "host box");
    assert!(host.contains("cpu 25% of 2 cores"), "{host}");
    assert!(host.contains("mem 2.0 GiB / 8.0 GiB"), "{host}");
    assert!(host.contains("load 0.50 0.25 0.12"), "{host}");
}

#[test]
fn the_log_tail_of_the_selected_app_marks_out_and_err() {
    let mut state = sample_state();
    state.apply_log(&log(1, LogStream::Out, "listening on 80\n"));
    state.apply_log(&log(1, LogStream::Err, "warn: slow\nhalf"));
    state.apply_log(&log(4, LogStream::Out, "other app\n"));
    let shown = lines(&draw(&state, 100, 30));
    line_with(&shown, "out listening on 80");
    line_with(&shown, "err warn: slow");
    line_with(&shown, "err half");
    assert!(!shown.iter().any(|l| l.contains("other app")));
    state.move_selection(1);
    let shown = lines(&draw(&state, 100, 30));
    line_with(&shown, "out other app");
    line_with(&shown, "logs worker");
}

#[test]
fn control_characters_of_user_data_are_never_drawn_raw() {
    let now = Instant::now();
    let mut state = MonitState::new(now);
    let mut evil = app(0, "ev\u{1b}]0;pwned\u{7}il", ProcessStatus::Online);
    evil.host = "h\u{1b}[2J".into();
    state.set_apps(vec![evil], now);
    state.apply_log(&log(0, LogStream::Out, "\u{1b}[31mred\u{9b}\ttab\n"));
    state.apply_metrics("h\u{1b}[2J", report(&[]));
    state.set_status("boom\u{1b}[H", true);
    let buffer = draw(&state, 120, 30);
    let raw = buffer
        .content()
        .iter()
        .flat_map(|c| c.symbol().chars())
        .any(char::is_control);
    assert!(!raw, "{}", lines(&buffer).join("\n"));
    let shown = lines(&buffer);
    line_with(&shown, r"ev\x1b]0;pwned\x07il");
    line_with(&shown, r"out \x1b[31mred\u{9b}    tab");
    line_with(&shown, r"host h\x1b[2J");
    line_with(&shown, r"boom\x1b[H");
}

#[test]
fn the_footer_shows_keys_and_the_status_line() {
    let mut state = sample_state();
    state.set_status("restart web: no such app", true);
    let buffer = draw(&state, 100, 30);
    let shown = lines(&buffer);
    line_with(&shown, "r restart");
    line_with(&shown, "q quit");
    line_with(&shown, "host: no metrics report yet");
    assert_eq!(buffer[position(&buffer, "restart web")].fg, Color::LightRed);
}

#[test]
fn tiny_and_empty_screens_do_not_panic() {
    let state = sample_state();
    for (w, h) in [(0, 0), (1, 1), (10, 3), (20, 8)] {
        draw(&state, w, h);
    }
    let empty = MonitState::new(Instant::now());
    let shown = lines(&draw(&empty, 80, 20));
    line_with(&shown, "no output since monit started");
}

#[test]
fn bytes_read_like_a_person_would() {
    assert_eq!(human_bytes(512), "512 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(3 << 30), "3.0 GiB");
}
