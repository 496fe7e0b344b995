//! Methods agents call: hello, heartbeat, reports, events to relay.

use crate::state::God;
use std::sync::Arc;
use zpm_proto::commands::Hello;
use zpm_proto::{AgentInfo, Pong, ProcessReport};
use zpm_rpc::{Ctx, ErrorCode, NoParams, RpcError};

pub async fn hello(god: Arc<God>, hello: Hello, ctx: Ctx) -> Result<Pong, RpcError> {
    if hello.agent.protocol != zpm_proto::PROTOCOL_VERSION {
        return Err(RpcError::new(
            ErrorCode::Version,
            format!(
                "agent speaks protocol {}, God speaks {}",
                hello.agent.protocol,
                zpm_proto::PROTOCOL_VERSION
            ),
        ));
    }
    tracing::info!(role = %hello.agent.role, pid = hello.agent.pid, holding = hello.holding.len(), "agent hello");
    god.registry().hello(hello.agent.clone(), ctx.peer);
    {
        let mut table = god.table();
        for report in hello.holding {
            table.apply(report);
        }
    }
    god.changed();
    god.publish(zpm_proto::topics::AGENT_UP, &hello.agent).await;
    Ok(god.pong())
}

pub async fn heartbeat(god: Arc<God>, _: NoParams, ctx: Ctx) -> Result<bool, RpcError> {
    Ok(god.registry().seen(&ctx.peer))
}

pub async fn report(god: Arc<God>, report: ProcessReport, ctx: Ctx) -> Result<(), RpcError> {
    god.registry().seen(&ctx.peer);
    if !god.table().apply(report) {
        tracing::debug!("report for an app God no longer has");
    }
    god.changed();
    Ok(())
}

pub async fn publish(god: Arc<God>, event: zpm_bus::RelayEvent, _: Ctx) -> Result<(), RpcError> {
    god.relay(event).await;
    Ok(())
}

pub async fn list(god: Arc<God>, _: NoParams, _: Ctx) -> Result<Vec<AgentInfo>, RpcError> {
    Ok(god.registry().list())
}
