//! Parallel dispatch on PostgreSQL: our lock keys against the table-lock
//! baseline, on disjoint contexts and on one shared context, with the
//! client's CPU time per dispatch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use factos::{EventStore, ReadOptions};
use factos_postgres::{LockMode, PgStore, PoolOptions};

use crate::durability::Durability;
use crate::stats::{CpuTime, median};
use crate::workload::{concert_query, sell_until};
use crate::{Config, Report};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Disjoint,
    Shared,
}

/// One run: dispatches per second, client CPU µs per dispatch, and how
/// many invariant violations the run left.
struct Run {
    rate: f64,
    cpu_micros: f64,
    violations: u64,
}

async fn run_once(
    durability: Durability,
    mode: LockMode,
    writers: u32,
    shape: Shape,
    duration: Duration,
) -> anyhow::Result<Run> {
    let (config, _) = durability.cluster()?.fresh_schema().await?;
    let store = PgStore::connect_with(config, PoolOptions::new(writers as usize + 4))?.with_lock_mode(mode);
    store.migrate().await?;
    let deadline = Arc::new(Instant::now() + duration);
    let cpu = CpuTime::now();
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let (store, deadline) = (store.clone(), Arc::clone(&deadline));
            tokio::spawn(async move {
                let concert = if shape == Shape::Disjoint { writer } else { 0 };
                let (accepted, failed) = sell_until(&store, concert, writer * 1_000_000, *deadline).await;
                anyhow::Ok((concert, accepted, failed))
            })
        })
        .collect();
    let mut per_concert: BTreeMap<u32, u64> = BTreeMap::new();
    let mut violations = 0;
    for task in tasks {
        let (concert, accepted, failed) = task.await??;
        *per_concert.entry(concert).or_default() += accepted;
        violations += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu.elapsed_micros();
    let total: u64 = per_concert.values().sum();
    for (concert, accepted) in &per_concert {
        let stored = store.read(&concert_query(*concert), ReadOptions::forwards()).await?;
        let revisions_ok = stored.iter().enumerate().all(|(i, e)| e.revision.value() == i as u64);
        let positions_ok = stored.windows(2).all(|w| w[0].position < w[1].position);
        if stored.len() as u64 != *accepted || !revisions_ok || !positions_ok {
            violations += 1;
        }
    }
    Ok(Run {
        rate: total as f64 / elapsed,
        cpu_micros: cpu / total.max(1) as f64,
        violations,
    })
}

/// Runs the section (numbered `number`) on the cluster with `durability`.
pub async fn run(config: &Config, report: &mut Report, durability: Durability, number: &str) -> anyhow::Result<()> {
    report.section(
        &format!("{number} Parallel dispatch on PostgreSQL — {}", durability.postgres()),
        "`dispatch_context` of the ticket workload, each writer in its own task with its own connection, for a fixed time. \
         *disjoint*: every writer sells tickets of its own concert; *shared*: all writers sell tickets of one concert. \
         *baseline*: the same store with `LockMode::TableLock` (`LOCK TABLE events IN EXCLUSIVE MODE` around every decision, \
         as the reference design does). *client CPU*: the benchmark process's user + system CPU time per accepted dispatch \
         (the client shares the 2 cores with the server). Violations: failed dispatches plus concerts whose stored sales, \
         revisions or positions disagree with the accepted dispatches.",
        &[
            "contexts",
            "writers",
            "factos dispatches/s",
            "client CPU µs/dispatch",
            "baseline dispatches/s",
            "factos/baseline",
            "violations",
        ],
    );
    for shape in [Shape::Disjoint, Shape::Shared] {
        for writers in [1u32, 2, 4, 8, 16] {
            let (mut ours, mut cpu, mut baseline, mut violations) = (Vec::new(), Vec::new(), Vec::new(), 0);
            for _ in 0..config.repeats {
                let run = run_once(durability, LockMode::Advisory, writers, shape, config.parallel_duration).await?;
                ours.push(run.rate);
                cpu.push(run.cpu_micros);
                violations += run.violations;
                let run = run_once(
                    durability,
                    LockMode::TableLock,
                    writers,
                    shape,
                    config.parallel_duration,
                )
                .await?;
                baseline.push(run.rate);
                violations += run.violations;
            }
            let (ours, baseline) = (median(&ours), median(&baseline));
            report.row(&[
                format!("{shape:?}").to_lowercase(),
                writers.to_string(),
                format!("{ours:.0}"),
                format!("{:.0}", median(&cpu)),
                format!("{baseline:.0}"),
                format!("{:.2}", ours / baseline),
                violations.to_string(),
            ]);
        }
    }
    Ok(())
}
