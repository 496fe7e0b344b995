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
    zpm_proto::validate::host_name("host", &hello.agent.host).map_err(super::bad_params)?;
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
    let agent = &hello.agent;
    tracing::info!(role = %agent.role, host = %agent.host, pid = agent.pid, holding = hello.holding.len(), "agent hello");
    if let Err(claimed) = god.registry().hello(agent.clone(), ctx.peer.clone()) {
        tracing::warn!(role = %agent.role, host = %agent.host, pid = agent.pid, holder = claimed.pid, "refused a second agent for a host and role");
        return Err(RpcError::new(
            ErrorCode::Conflict,
            format!(
                "host {:?} already has a live {} agent (pid {}); give this one another host name",
                agent.host, agent.role, claimed.pid
            ),
        ));
    }
    let role = Role::parse(&agent.role);
    let host = agent.host.clone();
    if role == Some(Role::Spawner) {
        god.table().set_host_down(&host, false);
        reconcile(&god, &ctx, hello.holding, &host).await;
        super::deps::resume_waiting(&god, &ctx, &host);
    }
    god.changed();
    if let Some(role) = role.filter(|_| host == god.host) {
        // Resets the keeper's backoff: this host's agent is healthy.
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
async fn reconcile(god: &God, ctx: &Ctx, holding: Vec<Held>, host: &str) {
    let held_ids: HashSet<u32> = holding.iter().map(|h| h.report.id).collect();
    let mut to_stop = Vec::new();
    let mut to_spawn = Vec::new();
    {
        let mut table = god.table();
        for held in holding {
            let id = held.report.id;
            match table.get(id).map(|p| (p.desired, p.host == host)) {
                None => table.adopt(held, host),
                Some((_, false)) => {
                    // Only if God lost its state and two hosts' apps came back with one id.
                    tracing::error!(id, %host, "a spawner holds an id God has on another host; ignored");
                }
                Some((desired, true)) => {
                    let running = held.report.status != ProcessStatus::Stopped;
                    table.apply(held.report);
                    if desired == Desired::Stopped && running {
                        to_stop.push(id);
                    }
                }
            }
        }
        let on_host = |p: &&crate::table::Proc| p.host == host && !held_ids.contains(&p.id);
        for proc in table.procs().filter(on_host) {
            // One still waiting for its dependencies is spawned by its start, not here.
            if proc.desired == Desired::Running && proc.waiting.is_empty() {
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
            .filter(on_host)
            .filter(|p| p.desired == Desired::Stopped)
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
    god.persist().await;
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
    Ok(god.heard_from(&ctx.peer, vitals).is_some())
}

/// A spawner's report on one of its host's apps; from anyone else, ignored.
pub async fn report(god: Arc<God>, report: ProcessReport, ctx: Ctx) -> Result<(), RpcError> {
    let Some(sender) = god.heard_from(&ctx.peer, None) else {
        return Ok(());
    };
    let applied = {
        let mut table = god.table();
        let on_its_host = table
            .get(report.id)
            .is_some_and(|p| sender.is_spawner_of(&p.host));
        on_its_host && table.apply(report)
    };
    if applied {
        god.changed();
    } else {
        tracing::debug!(role = %sender.role, host = %sender.host, "report for an app this agent does not run; ignored");
    }
    Ok(())
}

pub async fn publish(god: Arc<God>, event: zpm_bus::RelayEvent, _: Ctx) -> Result<(), RpcError> {
    god.relay(event)
}

/// A metrics agent's sample: kept per app for `ls`, and published as `metrics`.
pub async fn metrics(god: Arc<God>, report: MetricsReport, ctx: Ctx) -> Result<(), RpcError> {
    let Some(sender) = god.heard_from(&ctx.peer, None) else {
        return Ok(());
    };
    god.table().apply_metrics(&report.apps, &sender.host);
    god.set_host(HostInfo {
        host: sender.host,
        at_ms: report.at_ms,
        metrics: report.host.clone(),
    });
    god.publish(zpm_proto::topics::METRICS, &report).await;
    Ok(())
}

/// The logs agent's files failing now (bounded: a few hundred kept).
pub async fn log_problems(
    god: Arc<God>,
    mut report: LogProblems,
    ctx: Ctx,
) -> Result<(), RpcError> {
    god.heard_from(&ctx.peer, None);
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
