//! The rpc methods God serves. `apps` is what the CLI calls; `agents` is what agents call.

mod agents;
mod apply;
mod apps;
mod deps;
mod dump;
mod logs_ask;
mod reload;
mod update_env;
mod watch;

use crate::state::God;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;
use zpm_proto::method::{agent, app, god, logs};
use zpm_proto::validate::Invalid;
use zpm_rpc::{Ctx, RpcError, ServerBuilder};

/// A request that breaks a rule of `zpm_proto::validate`: nothing was started or stored.
fn bad_params(invalid: Invalid) -> RpcError {
    RpcError::bad_params(invalid.message())
}

/// Adapts `f(god, params, ctx)` to the handler shape, cloning the `Arc<God>` per request.
fn on<P, R, F, Fut>(god: &Arc<God>, f: F) -> impl Fn(P, Ctx) -> Fut + Send + Sync + 'static
where
    F: Fn(Arc<God>, P, Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, RpcError>> + Send + 'static,
    P: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
{
    let god = Arc::clone(god);
    move |params, ctx| f(Arc::clone(&god), params, ctx)
}

pub fn register(god: Arc<God>) -> ServerBuilder {
    ServerBuilder::new()
        .version(zpm_proto::PROTOCOL_VERSION)
        .handle::<god::Ping, _, _>(on(&god, |god, _, _| async move { Ok(god.pong()) }))
        .handle::<app::Start, _, _>(on(&god, apps::start))
        .handle::<app::Stop, _, _>(on(&god, apps::stop))
        .handle::<app::Restart, _, _>(on(&god, apps::restart))
        .handle::<app::Delete, _, _>(on(&god, apps::delete))
        .handle::<app::List, _, _>(on(&god, apps::list))
        .handle::<app::Describe, _, _>(on(&god, apps::describe))
        .handle::<app::Signal, _, _>(on(&god, apps::signal))
        .handle::<app::Scale, _, _>(on(&god, apps::scale))
        .handle::<app::Reset, _, _>(on(&god, apps::reset))
        .handle::<app::Reload, _, _>(on(&god, reload::reload))
        .handle::<app::Apply, _, _>(on(&god, apply::apply))
        .handle::<app::Msg, _, _>(on(&god, reload::msg))
        .handle::<app::Send, _, _>(on(&god, reload::send))
        .handle::<agent::Reloaded, _, _>(on(&god, reload::reloaded))
        .handle::<app::Watch, _, _>(on(&god, watch::watch))
        .handle::<agent::Changed, _, _>(on(&god, watch::changed))
        .handle::<god::Kill, _, _>(on(&god, apps::kill))
        .handle::<god::Save, _, _>(on(&god, dump::save))
        .handle::<god::Resurrect, _, _>(on(&god, dump::resurrect))
        .handle::<agent::List, _, _>(on(&god, agents::list))
        .handle::<agent::Hosts, _, _>(on(&god, agents::hosts))
        .handle::<agent::Hello, _, _>(on(&god, agents::hello))
        .handle::<agent::Heartbeat, _, _>(on(&god, agents::heartbeat))
        .handle::<agent::Report, _, _>(on(&god, agents::report))
        .handle::<agent::Publish, _, _>(on(&god, agents::publish))
        .handle::<agent::Metrics, _, _>(on(&god, agents::metrics))
        .handle::<logs::Problems, _, _>(on(&god, agents::log_problems))
        .handle::<logs::Ask, _, _>(on(&god, logs_ask::ask))
        .handle::<logs::Answer, _, _>(on(&god, logs_ask::answer))
        .handle::<agent::MemoryRestart, _, _>(on(&god, apps::memory_restart))
}
