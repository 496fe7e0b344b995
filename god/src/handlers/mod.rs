//! The rpc methods God serves. `apps` is what the CLI calls; `agents` is what agents call.

mod agents;
mod apps;
mod dump;

use crate::state::God;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;
use zpm_proto::validate::Invalid;
use zpm_rpc::{Ctx, NoParams, RpcError, ServerBuilder};

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
        .method(
            "ping",
            on(&god, |god, _: NoParams, _| async move { Ok(god.pong()) }),
        )
        .method("app.start", on(&god, apps::start))
        .method("app.stop", on(&god, apps::stop))
        .method("app.restart", on(&god, apps::restart))
        .method("app.delete", on(&god, apps::delete))
        .method("app.list", on(&god, apps::list))
        .method("app.describe", on(&god, apps::describe))
        .method("app.signal", on(&god, apps::signal))
        .method("app.scale", on(&god, apps::scale))
        .method("god.kill", on(&god, apps::kill))
        .method("god.save", on(&god, dump::save))
        .method("god.resurrect", on(&god, dump::resurrect))
        .method("agents.list", on(&god, agents::list))
        .method("agent.hello", on(&god, agents::hello))
        .method("agent.heartbeat", on(&god, agents::heartbeat))
        .method("proc.report", on(&god, agents::report))
        .method("bus.publish", on(&god, agents::publish))
}
