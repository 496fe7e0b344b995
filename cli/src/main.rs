//! The `zpm` command line, and the entry points of the daemon (God) and local agents,
//! which are the same binary run as `zpm daemon` / `zpm agent <role>`.

mod cli;
mod connect;
mod ecosystem;
mod home;
mod output;
mod processes;
mod startup;
mod verbs;

use clap::{CommandFactory as _, Parser as _};
use cli::{Cli, Command};
use std::io::Write as _;

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("zpm: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    use anyhow::Context as _;
    match cli.command {
        Command::Version(a) => print_version(a.json),
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "zpm", &mut out);
            out.flush().context("writing completions")
        }
        Command::Daemon => processes::daemon(home::resolve()?),
        Command::Agent { role } => processes::agent(home::resolve()?, &role),
        command => {
            let home = home::resolve()?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(verbs::run(command, &home))
        }
    }
}

fn print_version(json: bool) -> anyhow::Result<()> {
    if json {
        output::print_json(&serde_json::json!({
            "version": zpm_proto::ZPM_VERSION,
            "protocol": zpm_proto::PROTOCOL_VERSION,
        }))
    } else {
        output::print_line(&format!(
            "zpm {} (protocol v{})",
            zpm_proto::ZPM_VERSION,
            zpm_proto::PROTOCOL_VERSION
        ))
    }
}
