//! The option parsers and the shell-like word splitter.

use super::s;
use crate::cli::parse_exec_mode;
use crate::ecosystem::program::split_words;
use crate::ecosystem::{parse_duration_ms, parse_env_pair, parse_seconds_ms};
use zpm_proto::ready::ExecMode;

#[test]
fn durations() {
    assert_eq!(parse_duration_ms("1500"), Ok(1500));
    assert_eq!(parse_duration_ms("0"), Ok(0));
    assert_eq!(parse_duration_ms("1s"), Ok(1000));
    assert_eq!(parse_duration_ms("250ms"), Ok(250));
    assert_eq!(parse_duration_ms("2m"), Ok(120_000));
    assert_eq!(parse_duration_ms("1m 30s"), Ok(90_000));
    for bad in ["", "abc", "-5", "1.5.s", "10 parsecs"] {
        let error = parse_duration_ms(bad).unwrap_err();
        assert!(error.starts_with("invalid duration"), "{bad:?}: {error}");
    }
}

#[test]
fn seconds() {
    assert_eq!(parse_seconds_ms("30"), Ok(30_000));
    assert_eq!(parse_seconds_ms("0"), Ok(0));
    assert_eq!(parse_seconds_ms("0.5"), Ok(500));
    assert_eq!(parse_seconds_ms(" 1.2345 "), Ok(1235));
    assert_eq!(parse_seconds_ms("500ms"), Ok(500));
    assert_eq!(parse_seconds_ms("2m"), Ok(120_000));
    for bad in ["", "abc", "-5", "1.2.3", ".", "10 parsecs"] {
        let error = parse_seconds_ms(bad).unwrap_err();
        assert!(error.starts_with("invalid duration"), "{bad:?}: {error}");
    }
    assert!(
        parse_seconds_ms("99999999999999999999")
            .unwrap_err()
            .contains("too long")
    );
}

#[test]
fn exec_modes() {
    for (text, mode) in [
        ("fork", ExecMode::Fork),
        ("fork_mode", ExecMode::Fork),
        ("cluster", ExecMode::Cluster),
        ("cluster_mode", ExecMode::Cluster),
    ] {
        assert_eq!(parse_exec_mode(text), Ok(mode));
    }
    assert_eq!(
        parse_exec_mode("Cluster").unwrap_err(),
        r#""Cluster" is not an exec mode: `fork` or `cluster`"#
    );
}

#[test]
fn env_pairs() {
    assert_eq!(parse_env_pair("KEY=VALUE"), Ok((s("KEY"), s("VALUE"))));
    assert_eq!(parse_env_pair("K=a=b"), Ok((s("K"), s("a=b"))));
    assert_eq!(parse_env_pair("EMPTY="), Ok((s("EMPTY"), s(""))));
    assert!(parse_env_pair("=v").unwrap_err().contains("empty"));
    assert!(
        parse_env_pair("NOVALUE")
            .unwrap_err()
            .contains("expected KEY=VALUE")
    );
}

#[test]
fn words() {
    assert_eq!(split_words("a  b\tc").unwrap(), ["a", "b", "c"]);
    assert_eq!(
        split_words(r#"--msg 'hello world' "x y"z"#).unwrap(),
        ["--msg", "hello world", "x yz"]
    );
    assert_eq!(split_words(r"a\ b ''").unwrap(), ["a b", ""]);
    assert!(split_words("").unwrap().is_empty());
    assert_eq!(split_words("'open").unwrap_err(), "unclosed ' quote");
}
