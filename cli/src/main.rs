//! The `zpm` command line.

mod commands;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("zpm: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
