/// Why God could not run.
#[derive(Debug, thiserror::Error)]
pub enum GodError {
    #[error(transparent)]
    Lock(#[from] zpm_host::LockError),
    #[error(transparent)]
    Config(#[from] zpm_host::config::ConfigError),
    #[error("cannot bind rpc endpoint: {0}")]
    Bind(#[from] zpm_rpc::BindError),
    #[error("cannot start the bus: {0}")]
    Bus(#[from] zpm_bus::BusError),
    #[error("cannot listen on {endpoint}: {source}")]
    Listen {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot launch the {role} agent: {source}")]
    Launch {
        role: String,
        #[source]
        source: std::io::Error,
    },
}
