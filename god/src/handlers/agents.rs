//! Methods agents call: hello, heartbeat, reports, events to relay.

use crate::persist::Desired;
use crate::state::God;
use std::collections::HashSet;
use std::sync::Arc;
use zpm_proto::commands::{Held, Hello, Interest, ProcCommand, SpawnCommand};
use zpm_proto::logfiles::LogProblems;
use zpm_proto::method::{agent, proc};
use zpm_proto::metrics::{HostInfo, MetricsReport};
use zpm_proto::{AgentInfo, Pong, ProcessReport, Role, Vitals};
use zpm_proto::{ProcessStatus, RestartReason};
use zpm_rpc::{Ctx, ErrorCode, NoParams, RpcError};

pub async fn hello(god: Arc<God>, hello: Hello, ctx: Ctx) -> Result<Pong, RpcError> {
    // Any role name is welcome (third parties pick their own; only zpm's own roles are
    // launched and kept by God), but it is shown in `zpm agents` and logged: a safe word.
    zpm_proto::validate::agent_role(&hello.agent.role).map_err(super::bad_params)?;
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
    god.registry().hello(hello.agent.clone(), ctx.peer.clone());
    let role = Role::parse(&hello.agent.role);
    if role == Some(Role::Spawner) {
        reconcile(&god, &ctx, hello.holding).await;
    }
    god.changed();
    if let Some(role) = role {
        // Resets the keeper's backoff: this agent is healthy.
        god.keeper(role).health.healthy();
    }
    god.publish(zpm_proto::topics::AGENT_UP, &hello.agent).await;
    let interest = Interest {
        prefixes: god.interest().borrow().clone(),
    };
    if let Err(e) = ctx
        .pusher
        .push_method::<agent::Interest>(&ctx.peer, &interest)
        .await
    {
        tracing::warn!(error = %e, "telling a new agent what the bus wants");
    }
    Ok(god.pong())
}

/// Makes God's table and the spawner's holdings agree: what the spawner runs and God does
/// not know is adopted (God lost its state); what God wants running and the spawner does not
/// hold is spawned again (the spawner was replaced), with its restart count kept; what God
/// wants stopped is stopped.
async fn reconcile(god: &God, ctx: &Ctx, holding: Vec<Held>) {
    let held_ids: HashSet<u32> = holding.iter().map(|h| h.report.id).collect();
    let mut to_stop = Vec::new();
    let mut to_spawn = Vec::new();
    {
        let mut table = god.table();
        for held in holding {
            let id = held.report.id;
            match table.get(id).map(|p| p.desired) {
                None => table.adopt(held, &god.host),
                Some(desired) => {
                    let running = held.report.status != ProcessStatus::Stopped;
                    table.apply(held.report);
                    if desired == Desired::Stopped && running {
                        to_stop.push(id);
                    }
                }
            }
        }
        for proc in table.procs().filter(|p| !held_ids.contains(&p.id)) {
            if proc.desired == Desired::Running {
                let restarts = proc.report.restarts;
                to_spawn.push(SpawnCommand {
                    id: proc.id,
                    instance: proc.instance,
                    spec: proc.spec.clone(),
                    restarts,
                });
            }
        }
        let not_held: Vec<u32> = table
            .procs()
            .filter(|p| !held_ids.contains(&p.id) && p.desired == Desired::Stopped)
            .map(|p| p.id)
            .collect();
        for id in not_held {
            if let Some(proc) = table.get_mut(id) {
                proc.report.status = ProcessStatus::Stopped;
                proc.report.pid = None;
                proc.unheld = true;
            }
        }
        let now = zpm_bus::now_ms();
        for command in &to_spawn {
            if let Some(proc) = table.get_mut(command.id) {
                proc.record(RestartReason::SpawnerReplaced, now);
            }
        }
    }
    god.persist();
    for command in &to_spawn {
        tracing::info!(id = command.id, name = %command.spec.name, "spawning an app the spawner does not hold");
        if let Err(e) = ctx
            .pusher
            .push_method::<proc::Spawn>(&ctx.peer, command)
            .await
        {
            tracing::warn!(error = %e, "re-spawn push failed");
        }
    }
    for id in to_stop {
        if let Err(e) = ctx
            .pusher
            .push_method::<proc::Stop>(&ctx.peer, &ProcCommand { id })
            .await
        {
            tracing::warn!(error = %e, "stop push failed");
        }
    }
}

pub async fn heartbeat(god: Arc<God>, vitals: Option<Vitals>, ctx: Ctx) -> Result<bool, RpcError> {
    Ok(god.registry().seen(&ctx.peer, vitals))
}

pub async fn report(god: Arc<God>, report: ProcessReport, ctx: Ctx) -> Result<(), RpcError> {
    god.registry().seen(&ctx.peer, None);
    if !god.table().apply(report) {
        tracing::debug!("report for an app God no longer has");
    }
    god.changed();
    Ok(())
}

pub async fn publish(god: Arc<God>, event: zpm_bus::RelayEvent, _: Ctx) -> Result<(), RpcError> {
    god.relay(event)
}

/// A metrics agent's sample: kept per app for `ls`, and published as `metrics`.
pub async fn metrics(god: Arc<God>, report: MetricsReport, ctx: Ctx) -> Result<(), RpcError> {
    god.registry().seen(&ctx.peer, None);
    god.table().apply_metrics(&report.apps);
    if let Some(host) = god.registry().host_of(&ctx.peer) {
        god.set_host(HostInfo {
            host,
            at_ms: report.at_ms,
            metrics: report.host.clone(),
        });
    }
    god.publish(zpm_proto::topics::METRICS, &report).await;
    Ok(())
}

/// The logs agent's files failing now (bounded: a few hundred kept).
pub async fn log_problems(
    god: Arc<God>,
    mut report: LogProblems,
    ctx: Ctx,
) -> Result<(), RpcError> {
    god.registry().seen(&ctx.peer, None);
    report.problems.truncate(256);
    god.set_log_problems(report.problems);
    Ok(())
}

pub async fn hosts(god: Arc<God>, _: NoParams, _: Ctx) -> Result<Vec<HostInfo>, RpcError> {
    Ok(god.hosts())
}

pub async fn list(god: Arc<God>, _: NoParams, _: Ctx) -> Result<Vec<AgentInfo>, RpcError> {
    Ok(god.registry().list())
}
