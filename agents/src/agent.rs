//! What every agent process shares, whatever its role: the flock that makes it the only
//! one of its role on this home, its link to God (a hello on every new connection,
//! heartbeats with its vitals), God's pushes, and leaving when God is gone for good.

use crate::link::{Holdings, heartbeat, say_hello_on_connect};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use zpm_bus::EventSource;
use zpm_host::home::Home;
use zpm_host::keeper::Health;
use zpm_host::{HomeLock, LockError};
use zpm_proto::commands::Interest;
use zpm_proto::method::agent;
use zpm_proto::{AgentHello, PROTOCOL_VERSION, Role, ZPM_VERSION};
use zpm_rpc::{Client, ClientOptions, Push};

/// Longest pause between attempts to reach God while it is away: reconnecting (and the
/// hello that makes God see us) must not wait out a long pause; a refused connect is cheap.
const GOD_RECONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// Nobody has held God's lock for this long: God was not relaunched (the spawner brings
/// it back within a second), so nobody will ever tell this agent to exit. Leave.
const GOD_GONE_FOR_GOOD: Duration = Duration::from_secs(10);

/// An agent process that has joined God.
pub struct Joined {
    /// Held for the process's life.
    pub lock: HomeLock,
    pub client: Arc<Client>,
    pub pushes: mpsc::Receiver<Push>,
    /// Stamps the events this agent publishes through God.
    pub source: EventSource,
    /// Told every time God accepts a hello.
    pub god_health: Health,
    /// What the bus's subscribers want, as God last said.
    pub interest: Wanted,
}

/// The topic prefixes the bus's subscribers want (God's `bus.interest` pushes). Cheap to
/// clone; every clone sees the latest.
#[derive(Clone, Debug, Default)]
pub struct Wanted(Arc<std::sync::RwLock<Interest>>);

impl Wanted {
    /// True if some subscriber wants events of `topic`: publish it.
    pub fn wants(&self, topic: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .wants(topic)
    }

    pub fn set(&self, interest: Interest) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = interest;
    }
}

/// Takes the role's lock (an error if another agent of the role runs on this home), then
/// dials God and keeps saying hello and heartbeating. `holdings` is re-sent with each hello.
pub fn join(home: &Home, role: Role, host: &str, holdings: Holdings) -> Result<Joined, LockError> {
    let lock = HomeLock::acquire(&home.agent_lock(role.as_str()))?;
    let options = ClientOptions {
        version: PROTOCOL_VERSION,
        max_backoff: GOD_RECONNECT_BACKOFF,
        ..ClientOptions::default()
    };
    let client = Arc::new(Client::with_options(&home.rpc_endpoint(), options));
    let Some(pushes) = client.take_pushes() else {
        unreachable!("a fresh client always has its push receiver");
    };
    let god_health = Health::default();
    tokio::spawn(say_hello_on_connect(
        Arc::clone(&client),
        hello(role, host),
        holdings,
        god_health.clone(),
    ));
    tokio::spawn(heartbeat(Arc::clone(&client)));
    Ok(Joined {
        lock,
        client,
        pushes,
        source: EventSource::new(role.as_str(), host, PROTOCOL_VERSION),
        god_health,
        interest: Wanted::default(),
    })
}

fn hello(role: Role, host: &str) -> AgentHello {
    AgentHello {
        role: role.as_str().into(),
        host: host.to_owned(),
        pid: std::process::id(),
        version: ZPM_VERSION.into(),
        protocol: PROTOCOL_VERSION,
    }
}

/// Returns once nobody has held God's lock for [`GOD_GONE_FOR_GOOD`] (read from
/// `/proc/locks`, never by taking the lock, which could make a starting God fail).
pub async fn god_gone_for_good(home: &Home) {
    let lock = home.god_lock();
    let mut absent_since: Option<tokio::time::Instant> = None;
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticks.tick().await;
        if zpm_host::holder(&lock).is_some() {
            absent_since = None;
            continue;
        }
        let since = *absent_since.get_or_insert_with(tokio::time::Instant::now);
        if since.elapsed() >= GOD_GONE_FOR_GOOD {
            tracing::warn!("God has been gone for {GOD_GONE_FOR_GOOD:?}; exiting");
            return;
        }
    }
}

/// Serves God's pushes until it orders this agent to exit (or is gone for good): each
/// other push goes to `on_push`.
pub async fn until_exit(
    home: &Home,
    pushes: &mut mpsc::Receiver<Push>,
    interest: &Wanted,
    mut on_push: impl FnMut(Push),
) {
    let gone = god_gone_for_good(home);
    tokio::pin!(gone);
    loop {
        tokio::select! {
            () = &mut gone => return,
            push = pushes.recv() => match push {
                None => return,
                Some(push) if push.is::<agent::Exit>() => {
                    tracing::info!("God ordered this agent to exit");
                    return;
                }
                Some(push) if push.is::<agent::Interest>() => match push.params::<agent::Interest>() {
                    Ok(wanted) => interest.set(wanted),
                    Err(e) => tracing::warn!(error = %e, "bad bus.interest from God"),
                },
                Some(push) => on_push(push),
            },
        }
    }
}
