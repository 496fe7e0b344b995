use super::*;

#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Line(u32, String),
    Lost(u32, Lost),
}

#[derive(Default)]
struct Collect(Vec<Seen>);

impl Sink for Collect {
    fn line(&mut self, who: Who<'_>, line: &[u8]) -> io::Result<()> {
        let text = String::from_utf8_lossy(line).into_owned();
        self.0.push(Seen::Line(who.id, text));
        Ok(())
    }
    fn lost(&mut self, who: Who<'_>, lost: Lost) -> io::Result<()> {
        self.0.push(Seen::Lost(who.id, lost));
        Ok(())
    }
}

fn event(id: u32, offset: u64, line: u64, data: &str) -> LogEvent {
    LogEvent {
        id,
        name: "api".into(),
        stream: LogStream::Out,
        offset,
        line,
        data: data.as_bytes().to_vec(),
    }
}

fn line(id: u32, text: &str) -> Seen {
    Seen::Line(id, text.to_owned())
}

/// Feeds `events` (id, offset, line, data) at `now`.
fn feed(events: &[(u32, u64, u64, &str)], now: Instant) -> (Assembler, Collect) {
    let (mut lines, mut sink) = (Assembler::default(), Collect::default());
    for &(id, offset, at_line, data) in events {
        let e = event(id, offset, at_line, data);
        lines.accept(e, now, &mut sink).unwrap();
    }
    (lines, sink)
}

#[test]
fn lines_are_assembled_across_events_and_apps() {
    let events = [
        (1, 0, 0, "a\nb"),
        (2, 0, 0, "x"),
        (1, 3, 1, "c\nd\n"),
        (2, 1, 0, "y\n"),
    ];
    let (lines, sink) = feed(&events, Instant::now());
    assert_eq!(
        sink.0,
        [line(1, "a"), line(1, "bc"), line(1, "d"), line(2, "xy")]
    );
    assert_eq!(lines.next_due(), None);
}

#[test]
fn a_partial_line_is_shown_after_the_hold() {
    let now = Instant::now();
    let (mut lines, mut sink) = feed(&[(1, 0, 0, "part")], now);
    assert_eq!(lines.next_due(), Some(now + HOLD));
    lines.expire(now + HOLD / 2, &mut sink).unwrap();
    assert!(sink.0.is_empty());
    lines.expire(now + HOLD, &mut sink).unwrap();
    let rest = event(1, 4, 0, "rest\n");
    lines.accept(rest, now + HOLD, &mut sink).unwrap();
    assert_eq!(sink.0, [line(1, "part"), line(1, "rest")]);
    lines
        .accept(event(1, 9, 1, "open"), now, &mut sink)
        .unwrap();
    lines.finish(&mut sink).unwrap();
    assert_eq!(sink.0[2], line(1, "open"));
}

#[test]
fn events_out_of_order_are_put_back_in_order() {
    let now = Instant::now();
    let events = [
        (1, 0, 0, "a\n"),
        (1, 4, 2, "c\n"),
        (1, 6, 3, "d\n"),
        (1, 2, 1, "b\n"),
        (1, 2, 1, "b\n"),
    ];
    let (lines, sink) = feed(&events, now);
    let expected = [line(1, "a"), line(1, "b"), line(1, "c"), line(1, "d")];
    assert_eq!(sink.0, expected, "in order, the duplicate ignored");
    assert_eq!(lines.next_due(), None);
}

#[test]
fn lost_events_are_reported_once_the_wait_is_over() {
    let now = Instant::now();
    // Events with 2 newlines went missing, then one carrying 8 bytes of a line.
    let events = [(1, 100, 7, "a\nhalf"), (1, 130, 10, "b\n")];
    let (mut lines, mut sink) = feed(&events, now);
    assert_eq!(sink.0, [line(1, "a")], "b waits for what comes before it");
    assert_eq!(lines.next_due(), Some(now + REORDER));
    lines.expire(now + REORDER, &mut sink).unwrap();
    lines
        .accept(event(1, 140, 11, "c\n"), now, &mut sink)
        .unwrap();
    lines.finish(&mut sink).unwrap();
    assert_eq!(
        sink.0,
        [
            line(1, "a"),
            line(1, "half"),
            Seen::Lost(1, Lost::Lines(2)),
            line(1, "b"),
            Seen::Lost(1, Lost::Bytes(8)),
            line(1, "c"),
        ]
    );
    // A latecomer for a hole already reported is not shown out of order.
    lines
        .accept(event(1, 106, 8, "x\n"), now, &mut sink)
        .unwrap();
    assert_eq!(sink.0.len(), 6);
}

#[test]
fn counting_from_zero_again_is_not_a_loss() {
    let events = [
        (1, 500, 40, "x\n"),
        (1, 0, 41, "y\n"),
        (1, 2, 42, "z\n"),
        (1, 4, 0, "w\n"),
    ];
    let (_, sink) = feed(&events, Instant::now());
    let expected = [line(1, "x"), line(1, "y"), line(1, "z"), line(1, "w")];
    assert_eq!(sink.0, expected);
}

#[test]
fn an_endless_line_is_shown_in_pieces() {
    let big = "x".repeat(1 << 20);
    let (lines, sink) = feed(&[(1, 0, 0, &big)], Instant::now());
    assert_eq!(sink.0.len(), 1);
    assert_eq!(lines.next_due(), None);
}
