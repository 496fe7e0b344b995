//! What a key does: a pure function of the state and the key, so it is tested without a
//! terminal. Actions that need the daemon are returned for the event loop to run.

use super::state::MonitState;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// An app verb the dashboard can run on the selected app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Restart,
    Stop,
}

impl Verb {
    /// "restarting", "stopping": for the status line while it runs.
    pub fn doing(self) -> &'static str {
        match self {
            Self::Restart => "restarting",
            Self::Stop => "stopping",
        }
    }

    pub fn done(self) -> &'static str {
        match self {
            Self::Restart => "restarted",
            Self::Stop => "stopped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing for the loop to do (the state may have changed: it redraws anyway).
    None,
    Quit,
    /// Run `verb` on the app with this id (its name is for the status line).
    App {
        verb: Verb,
        id: u32,
        name: String,
    },
}

pub fn on_key(state: &mut MonitState, key: KeyEvent) -> Action {
    // Terminals that report releases (kitty protocol) would otherwise act twice.
    if key.kind == KeyEventKind::Release {
        return Action::None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c') if ctrl => Action::Quit,
        KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
        KeyCode::Up | KeyCode::Char('k') => {
            state.move_selection(-1);
            Action::None
        }
        KeyCode::Down | KeyCode::Char('j') => {
            state.move_selection(1);
            Action::None
        }
        KeyCode::Char('r') => on_app(state, Verb::Restart),
        KeyCode::Char('s') => on_app(state, Verb::Stop),
        _ => Action::None,
    }
}

fn on_app(state: &mut MonitState, verb: Verb) -> Action {
    match state.selected_app() {
        Some(app) => Action::App {
            verb,
            id: app.id,
            name: app.name.clone(),
        },
        None => {
            state.set_status("no app selected", true);
            Action::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monit::state::tests::app;
    use std::time::Instant;
    use zpm_proto::ProcessStatus;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn two_apps() -> MonitState {
        let now = Instant::now();
        let mut state = MonitState::new(now);
        let online = ProcessStatus::Online;
        state.set_apps(vec![app(3, "web", online), app(7, "worker", online)], now);
        state
    }

    #[test]
    fn arrows_and_vi_keys_move_the_selection() {
        let mut state = two_apps();
        for (code, expected) in [
            (KeyCode::Down, 7),
            (KeyCode::Down, 7),
            (KeyCode::Up, 3),
            (KeyCode::Char('j'), 7),
            (KeyCode::Char('k'), 3),
        ] {
            assert_eq!(on_key(&mut state, press(code)), Action::None);
            assert_eq!(state.selected, Some(expected), "after {code:?}");
        }
    }

    #[test]
    fn r_and_s_act_on_the_selected_app() {
        let mut state = two_apps();
        on_key(&mut state, press(KeyCode::Down));
        let restart = on_key(&mut state, press(KeyCode::Char('r')));
        let stop = on_key(&mut state, press(KeyCode::Char('s')));
        let on = |verb| Action::App {
            verb,
            id: 7,
            name: "worker".into(),
        };
        assert_eq!((restart, stop), (on(Verb::Restart), on(Verb::Stop)));
    }

    #[test]
    fn an_action_without_apps_says_so() {
        let mut state = MonitState::new(Instant::now());
        assert_eq!(on_key(&mut state, press(KeyCode::Char('r'))), Action::None);
        assert!(state.status.as_ref().is_some_and(|s| s.error));
    }

    #[test]
    fn q_esc_and_ctrl_c_quit_but_a_release_does_nothing() {
        let mut state = two_apps();
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for key in [press(KeyCode::Char('q')), press(KeyCode::Esc), ctrl_c] {
            assert_eq!(on_key(&mut state, key), Action::Quit, "{key:?}");
        }
        assert_eq!(on_key(&mut state, press(KeyCode::Char('c'))), Action::None);
        let mut release = press(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert_eq!(on_key(&mut state, release), Action::None);
    }
}
