//! Section 12, decision latency on long contexts with and without
//! snapshots, durable.

use std::time::{Duration, Instant};

use factos::snapshot::{JsonState, SnapshotStore, Snapshotting};
use factos::{DecisionScope, Dispatcher, ExpectedRevision, JsonCodec, LocalEventStore, StreamId};
use factos_postgres::{PgStore, PoolOptions};
use factos_sqlite::{SqliteStore, Synchronous};

use crate::durability::{Durability, sqlite_label, sqlite_options};
use crate::stats::{micros, percentile_of};
use crate::workload::{Buy, TicketSold, box_office, concert_query, concert_stream};
use crate::{Config, Report};

/// Events per preloading append.
const PRELOAD_BATCH: u64 = 1_000;
/// A decision offers a snapshot after folding this many events.
const EVERY: u64 = 20;

/// Sells `events` tickets of concert 1, in batches, without deciding.
async fn preload<S: LocalEventStore>(store: &S, events: u64) -> anyhow::Result<()> {
    let dispatcher = Dispatcher::new(store, JsonCodec::<TicketSold>::new());
    let mut sold = 0;
    while sold < events {
        let batch = (sold..events.min(sold + PRELOAD_BATCH))
            .map(|buyer| TicketSold {
                concert: 1,
                buyer: u32::try_from(buyer).unwrap_or(u32::MAX),
            })
            .collect::<Vec<_>>();
        sold += batch.len() as u64;
        let stream = StreamId::new(format!("preload-{sold}"))?;
        dispatcher.append(&stream, batch, ExpectedRevision::Any, None).await?;
    }
    Ok(())
}

/// p50 and p99 in milliseconds of `dispatches` sales, one after another,
/// with snapshots or without.
async fn measure<S: SnapshotStore + Sync>(store: &S, dispatches: u32, snapshots: bool) -> anyhow::Result<(f64, f64)> {
    let dispatcher = Dispatcher::new(store, JsonCodec::<TicketSold>::new());
    let (query, stream) = (concert_query(1), concert_stream(1));
    let snapshotted = Snapshotting::new(box_office(u32::MAX), "box-office", 1, JsonState).every(EVERY);
    let whole = box_office(u32::MAX);
    if snapshots {
        // The first decision folds everything and offers the first
        // snapshot; the measured ones start from it.
        dispatcher
            .dispatch_context_snapshotted(&snapshotted, &Buy { concert: 1, buyer: 0 }, &query, &stream)
            .await?;
        wait_for_snapshot(store, &snapshotted).await?;
    }
    let mut latencies = Vec::new();
    for buyer in 1..=dispatches {
        let buy = Buy { concert: 1, buyer };
        let started = Instant::now();
        if snapshots {
            dispatcher
                .dispatch_context_snapshotted(&snapshotted, &buy, &query, &stream)
                .await?;
        } else {
            dispatcher.dispatch_context(&whole, &buy, &query, &stream).await?;
        }
        latencies.push(started.elapsed());
    }
    let latencies = micros(&latencies);
    Ok((
        percentile_of(&latencies, 50.0) / 1_000.0,
        percentile_of(&latencies, 99.0) / 1_000.0,
    ))
}

async fn wait_for_snapshot<S: SnapshotStore, D, C>(store: &S, decider: &Snapshotting<D, C>) -> anyhow::Result<()> {
    let scope = DecisionScope::Query(concert_query(1));
    let waited = Instant::now();
    loop {
        let (decision, read) = store.begin_decision_from_snapshot(&scope, &decider.key(&scope)).await?;
        store.abandon_decision(decision).await;
        if read.snapshot.is_some() {
            return Ok(());
        }
        anyhow::ensure!(
            waited.elapsed() < Duration::from_secs(30),
            "no snapshot saved within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One row: both ways on a fresh store of `events` events.
async fn row<S: SnapshotStore + Sync>(
    report: &mut Report,
    label: &str,
    fresh: impl AsyncFn() -> anyhow::Result<S>,
    events: u64,
    dispatches: u32,
) -> anyhow::Result<()> {
    let store = fresh().await?;
    preload(&store, events).await?;
    let (whole_p50, whole_p99) = measure(&store, dispatches, false).await?;
    let (snap_p50, snap_p99) = measure(&store, dispatches, true).await?;
    report.row(&[
        label.into(),
        events.to_string(),
        format!("{whole_p50:.2}"),
        format!("{snap_p50:.2}"),
        format!("{:.1}×", whole_p50 / snap_p50),
        format!("{whole_p99:.2}"),
        format!("{snap_p99:.2}"),
    ]);
    Ok(())
}

/// Runs the section.
pub async fn run(config: &Config, report: &mut Report) -> anyhow::Result<()> {
    report.section(
        &format!(
            "12. Decision latency on long contexts, with and without snapshots — {}, {}",
            sqlite_label(Synchronous::Full),
            Durability::Durable.postgres()
        ),
        &format!(
            "`dispatch_context` against `dispatch_context_snapshotted` of the ticket workload (read the concert's sales, \
             fold, decide, append with the condition) on a context preloaded with N sales; one writer, {} dispatches \
             each way, one after another, on the same store. With snapshots a decision offers one after folding {EVERY} \
             events (saved off the dispatch path), so it folds at most about {EVERY} events after the newest snapshot; \
             without, it folds all N.",
            config.snapshot_dispatches
        ),
        &[
            "backend",
            "context events",
            "without p50 ms",
            "with p50 ms",
            "speed-up (p50)",
            "without p99 ms",
            "with p99 ms",
        ],
    );
    let durable = Durability::Durable.cluster()?;
    for &events in &config.snapshot_sizes {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("events.db");
        let sqlite = async || {
            let store = SqliteStore::open_with(&path, sqlite_options(Synchronous::Full))?;
            store.migrate().await?;
            Ok(store)
        };
        row(report, "SQLite", sqlite, events, config.snapshot_dispatches).await?;
        let postgres = async || {
            let (pg_config, _) = durable.fresh_schema().await?;
            let store = PgStore::connect_with(pg_config, PoolOptions::new(4))?;
            store.migrate().await?;
            Ok(store)
        };
        row(report, "PostgreSQL", postgres, events, config.snapshot_dispatches).await?;
    }
    Ok(())
}
