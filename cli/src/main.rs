//! The `zpm` command line, and the entry points of the daemon (God) and local agents,
//! which are the same binary run as `zpm daemon` / `zpm agent <role>`.

mod apply;
mod cli;
mod connect;
mod describe;
mod ecosystem;
mod events;
mod home;
mod logs;
mod monit;
mod output;
mod processes;
mod remote;
mod startup;
mod update_env;
mod verbs;

use clap::{CommandFactory as _, Parser as _};
use cli::{Cli, Command};
use std::io::Write as _;

fn main() -> std::process::ExitCode {
    // The daemons skip the command-line parser: building its tree of every subcommand
    // would page in code no daemon runs again (resident memory in every daemon process).
    let outcome = match daemon_process() {
        Some(Daemon::God) => home::resolve().and_then(|home| processes::daemon(home, None, None)),
        Some(Daemon::Agent(role)) => home::resolve().and_then(|home| processes::agent(home, &role)),
        None => run(Cli::parse()),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("zpm: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// What `zpm daemon` / `zpm agent ROLE` run.
enum Daemon {
    God,
    Agent(String),
}

/// The daemon process this command line asks for, if it is exactly one.
fn daemon_process() -> Option<Daemon> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).take(3).collect();
    // Anything not UTF-8 is for the parser to explain.
    let args: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
    match args[..] {
        ["daemon"] => Some(Daemon::God),
        // With ZPM_CONNECT set, `zpm agent ROLE` joins a remote God: the parser decides.
        ["agent", role] if std::env::var_os("ZPM_CONNECT").is_none() => {
            Some(Daemon::Agent(role.to_owned()))
        }
        _ => None,
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
        Command::Config(a) => show_config(&home::resolve()?, a.json),
        Command::Keygen { out } => keygen(out),
        Command::Daemon { listen } => {
            processes::daemon(home::resolve()?, listen, cli.remote.key_file)
        }
        Command::Agent { role, host } => match &cli.remote.connect {
            Some(_) => processes::joined_agents(home::resolve()?, &role, host, &cli.remote),
            None if host.is_some() => {
                anyhow::bail!("--host is for agents of a remote God: add --connect tcp://GOD:PORT")
            }
            None => processes::agent(home::resolve()?, &role),
        },
        command => {
            let home = home::resolve()?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let god = remote::remote_god(&cli.remote, &home)?;
            runtime.block_on(async {
                match (command, god) {
                    (Command::Tunnel { local }, Some(god)) => remote::tunnel(&local, &god).await,
                    (Command::Tunnel { .. }, None) => {
                        anyhow::bail!("zpm tunnel needs --connect tcp://HOST:PORT (or ZPM_CONNECT)")
                    }
                    (command, None) => verbs::run(command, &home, false).await,
                    (command, Some(god)) => remote::run(command, &god).await,
                }
            })
        }
    }
}

/// Only the default location needs `$ZPM_HOME` (created 0700); an explicit `--out` is
/// written where it says.
fn keygen(out: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let path = match out {
        Some(path) => path,
        None => home::resolve()?.key_file(),
    };
    zpm_tunnel::Key::write_new(&path)?;
    println!("wrote a new key to {} (mode 0600)", path.display());
    println!("copy it to every host of this zpm, keeping it private (chmod 600)");
    Ok(())
}

fn show_config(home: &zpm_host::home::Home, json: bool) -> anyhow::Result<()> {
    let path = home.config_file();
    let config = zpm_host::config::Config::load(&path)?;
    if json {
        return output::print_json(&config);
    }
    let origin = if path.exists() {
        format!("# {} over the defaults", path.display())
    } else {
        format!("# defaults ({} does not exist)", path.display())
    };
    output::print_line(&format!("{origin}\n{}", config.to_toml().trim_end()))
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
