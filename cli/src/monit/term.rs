//! The terminal while the dashboard runs: raw mode and the alternate screen, given back on
//! every way out — return, error, or panic (the hook restores before the message prints,
//! else the message would be lost with the alternate screen).

use super::state::MonitState;
use anyhow::Context as _;
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::{IsTerminal as _, Stdout, stdout};

pub struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    pub fn enter() -> anyhow::Result<Self> {
        ensure_terminal()?;
        enable_raw_mode().context("putting the terminal in raw mode")?;
        if let Err(e) = execute!(stdout(), EnterAlternateScreen) {
            restore();
            return Err(e).context("entering the alternate screen");
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        match Terminal::new(CrosstermBackend::new(stdout())) {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore();
                Err(e).context("reading the terminal size")
            }
        }
    }

    pub fn draw(&mut self, state: &MonitState) -> anyhow::Result<()> {
        self.terminal
            .draw(|frame| super::view::render(state, frame))
            .context("drawing on the terminal")?;
        Ok(())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        // The cursor first, while still on the alternate screen: leaving it is then the last
        // thing written, and the shell gets its screen back exactly as it was.
        let _ = self.terminal.show_cursor();
        restore();
    }
}

/// Checked before anything else, so that `zpm monit | less` fails at once and plainly.
pub fn ensure_terminal() -> anyhow::Result<()> {
    anyhow::ensure!(
        stdout().is_terminal(),
        "zpm monit draws on a terminal, and stdout is not one (try zpm ls or zpm events)"
    );
    Ok(())
}

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), LeaveAlternateScreen);
}
