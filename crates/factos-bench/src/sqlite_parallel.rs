//! Parallel dispatch on SQLite: how commits of concurrent dispatchers share
//! the disk's flushes, under `synchronous=FULL` and `NORMAL` side by side.

use std::sync::Arc;
use std::time::{Duration, Instant};

use factos::{EventStore, ReadOptions};
use factos_sqlite::{SqliteStore, Synchronous};

use crate::durability::sqlite_options;
use crate::stats::median;
use crate::workload::{concert_query, sell_until};
use crate::{Config, Report};

/// Dispatches per second of `dispatchers` tasks on their own concerts (all
/// on concert 0 when `shared`), and the invariant violations left.
async fn run_once(
    synchronous: Synchronous,
    dispatchers: u32,
    shared: bool,
    duration: Duration,
) -> anyhow::Result<(f64, u64)> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open_with(dir.path().join("events.db"), sqlite_options(synchronous))?;
    store.migrate().await?;
    let deadline = Arc::new(Instant::now() + duration);
    let started = Instant::now();
    let tasks: Vec<_> = (0..dispatchers)
        .map(|n| {
            let (store, deadline) = (store.clone(), Arc::clone(&deadline));
            tokio::spawn(async move {
                let concert = if shared { 0 } else { n };
                let (accepted, failed) = sell_until(&store, concert, n * 1_000_000, *deadline).await;
                (concert, accepted, failed)
            })
        })
        .collect();
    let mut accepted_total = 0;
    let mut violations = 0;
    let mut per_concert = std::collections::BTreeMap::<u32, u64>::new();
    for task in tasks {
        let (concert, accepted, failed) = task.await?;
        accepted_total += accepted;
        violations += failed;
        *per_concert.entry(concert).or_default() += accepted;
    }
    let elapsed = started.elapsed().as_secs_f64();
    for (concert, accepted) in per_concert {
        let stored = store.read(&concert_query(concert), ReadOptions::forwards()).await?;
        if stored.len() as u64 != accepted {
            violations += 1;
        }
    }
    Ok((accepted_total as f64 / elapsed, violations))
}

/// Runs the section (numbered `number`).
pub async fn run(config: &Config, report: &mut Report, number: &str) -> anyhow::Result<()> {
    report.section(
        &format!("{number} Parallel dispatch on SQLite — synchronous=FULL and synchronous=NORMAL (WAL)"),
        "`dispatch_context` of the ticket workload from concurrent tasks on one store, for a fixed time; *disjoint*: each \
         task sells tickets of its own concert, *shared*: all sell tickets of one. FULL flushes the WAL at every commit, \
         NORMAL at checkpoints. *vs 1*: the rate over the same setting's one-dispatcher rate. Violations: failed dispatches \
         plus concerts whose stored sales disagree with the accepted dispatches.",
        &[
            "contexts",
            "dispatchers",
            "FULL dispatches/s",
            "FULL vs 1",
            "NORMAL dispatches/s",
            "NORMAL vs 1",
            "NORMAL/FULL",
            "violations",
        ],
    );
    for shared in [false, true] {
        let (mut full_one, mut normal_one) = (0.0, 0.0);
        for dispatchers in [1u32, 2, 4, 8, 16] {
            let (mut full, mut normal, mut violations) = (Vec::new(), Vec::new(), 0);
            for _ in 0..config.repeats {
                let (rate, bad) = run_once(Synchronous::Full, dispatchers, shared, config.parallel_duration).await?;
                full.push(rate);
                violations += bad;
                let (rate, bad) = run_once(Synchronous::Normal, dispatchers, shared, config.parallel_duration).await?;
                normal.push(rate);
                violations += bad;
            }
            let (full, normal) = (median(&full), median(&normal));
            if dispatchers == 1 {
                (full_one, normal_one) = (full, normal);
            }
            report.row(&[
                if shared { "shared" } else { "disjoint" }.into(),
                dispatchers.to_string(),
                format!("{full:.0}"),
                format!("{:.2}", full / full_one),
                format!("{normal:.0}"),
                format!("{:.2}", normal / normal_one),
                format!("{:.2}", normal / full),
                violations.to_string(),
            ]);
        }
    }
    Ok(())
}
