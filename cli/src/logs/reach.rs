//! Reaching the logs agents: this host's directly on `logs.sock` when the CLI runs beside
//! God, every other host's (and all of them through a tunnel) by asking God (`logs.ask`).

use anyhow::{Context as _, bail};
use std::time::Duration;
use zpm_host::home::Home;
use zpm_proto::LogsAsk;
use zpm_proto::method::{agent, logs};
use zpm_rpc::{CallError, Client, ClientOptions, Method, NoParams};

/// Long enough for a logs agent that is just being launched with a fresh daemon.
const LOGS_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Reach<'a> {
    home: &'a Home,
    pub god: Client,
    /// God's own host, whose logs agent is on `home`'s `logs.sock` unless `remote`.
    pub god_host: String,
    /// The CLI talks to God through the tunnel: no `logs.sock` of God's host here.
    remote: bool,
}

impl<'a> Reach<'a> {
    /// Reaches God (launching it if needed) and through it every host's logs agent.
    pub async fn open(home: &'a Home, remote: bool) -> anyhow::Result<Self> {
        let (god, pong) = crate::connect::ensure_daemon(home).await?;
        Ok(Self {
            home,
            god,
            god_host: pong.host,
            remote,
        })
    }

    /// Calls `M` on the logs agent of `host`.
    pub async fn call<M: Method>(
        &self,
        host: &str,
        params: &M::Params,
    ) -> anyhow::Result<M::Output> {
        if !self.remote && host == self.god_host {
            return self.call_local::<M>(params).await;
        }
        let ask = LogsAsk {
            host: host.to_owned(),
            method: M::NAME.to_owned(),
            params: zpm_rpc::to_value(params).context("encoding the request")?,
        };
        let value = match self.god.call_method::<logs::Ask>(&ask, LOGS_TIMEOUT).await {
            Ok(value) => value,
            Err(CallError::Remote(e)) => bail!("the logs agent of host {host}: {}", e.message),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("asking God for {} on host {host}", M::NAME));
            }
        };
        zpm_rpc::from_value(&value)
            .map_err(|e| anyhow::anyhow!("the logs agent of host {host} answered {}: {e}", M::NAME))
    }

    async fn call_local<M: Method>(&self, params: &M::Params) -> anyhow::Result<M::Output> {
        let options = ClientOptions {
            version: zpm_proto::PROTOCOL_VERSION,
            connect_attempt: Duration::from_millis(100),
            ..ClientOptions::default()
        };
        let endpoint = self.home.logs_endpoint();
        let client = Client::with_options(&endpoint, options);
        match client.call_method::<M>(params, LOGS_TIMEOUT).await {
            Ok(output) => Ok(output),
            Err(CallError::Remote(e)) => bail!("the logs agent: {}", e.message),
            Err(e) => Err(e).with_context(|| {
                format!(
                    "calling {} on {endpoint} (is the logs agent running? see `zpm agents`)",
                    M::NAME
                )
            }),
        }
    }

    /// Every host with a connected logs agent.
    pub async fn hosts(&self) -> anyhow::Result<Vec<String>> {
        let agents = crate::verbs::call::<agent::List>(&self.god, &NoParams {}).await?;
        let mut hosts: Vec<String> = agents
            .into_iter()
            .filter(|a| a.connected && a.role == zpm_proto::Role::Logs.as_str())
            .map(|a| a.host)
            .collect();
        hosts.sort();
        hosts.dedup();
        Ok(hosts)
    }
}
