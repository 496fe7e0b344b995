//! The key file: private mode, never overwritten, never printed.

use std::os::unix::fs::PermissionsExt as _;
use zpm_tunnel::{Key, KeyError};

#[test]
fn written_key_loads_back_and_is_0600() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("key");
    let key = Key::write_new(&path).expect("write");
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(text.len(), 65);
    assert!(text.ends_with('\n'));
    assert_eq!(Key::load(&path).expect("load"), key);
}

#[test]
fn write_new_refuses_to_overwrite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("key");
    let first = Key::write_new(&path).expect("write");
    let err = Key::write_new(&path).expect_err("must refuse");
    assert!(matches!(err, KeyError::Exists { .. }), "{err}");
    assert_eq!(Key::load(&path).expect("load"), first);
}

#[test]
fn a_key_readable_by_others_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("key");
    Key::write_new(&path).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = Key::load(&path).expect_err("must refuse");
    let text = err.to_string();
    assert!(
        text.contains(&format!("chmod 600 {}", path.display())),
        "{text}"
    );
    assert!(text.contains("0644"), "{text}");
}

#[test]
fn wrong_length_or_digits_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("key");
    for bad in [
        "abc\n".to_owned(),
        format!("{}\n", "g".repeat(64)),
        "0".repeat(200),
    ] {
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, &bad).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let err = Key::load(&path).expect_err("must refuse");
        assert!(matches!(err, KeyError::Format { .. }), "{err}");
    }
}

#[test]
fn debug_does_not_show_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("key");
    Key::write_new(&path).expect("write");
    let hex = std::fs::read_to_string(&path).expect("read");
    let shown = format!("{:?}", Key::load(&path).expect("load"));
    assert!(!shown.contains(hex.trim()), "{shown}");
    assert!(!shown.contains(&hex[..8]), "{shown}");
}
