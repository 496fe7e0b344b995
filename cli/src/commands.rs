//! Subcommands and their dispatch.

use anyhow::Context as _;
use clap::{CommandFactory, Parser, Subcommand};
use std::io::Write as _;

#[derive(Parser, Debug)]
#[command(
    name = "zpm",
    version,
    about = "A process manager built as a message-bus framework"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the zpm and protocol versions.
    Version {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Version { json } => print_version(json),
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "zpm", &mut out);
            out.flush().context("writing completions")
        }
    }
}

fn print_version(json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let body = serde_json::json!({
            "version": zpm_proto::ZPM_VERSION,
            "protocol": zpm_proto::PROTOCOL_VERSION,
        });
        writeln!(out, "{body}").context("writing version")
    } else {
        writeln!(
            out,
            "zpm {} (protocol v{})",
            zpm_proto::ZPM_VERSION,
            zpm_proto::PROTOCOL_VERSION
        )
        .context("writing version")
    }
}
