//! Section 1, append overhead: unconditional appends through the store
//! against raw SQL inserting the identical rows.

use std::time::Instant;

use factos::{AppendRequest, EventStore, StreamId};
use factos_postgres::{PgStore, PoolOptions};
use factos_sqlite::SqliteStore;
use factos_test_postgres::Cluster;

use crate::raw::{RawPg, RawSqlite};
use crate::stats::median;
use crate::workload::order_batch;
use crate::{Config, Report};

fn requests(batches: u64, size: u64) -> anyhow::Result<Vec<AppendRequest>> {
    let stream = StreamId::new("orders")?;
    (0..batches)
        .map(|b| order_batch(b * size, size, 1_000, &stream))
        .collect()
}

fn rate(events: u64, started: Instant) -> f64 {
    events as f64 / started.elapsed().as_secs_f64()
}

async fn sqlite_ours(requests: &[AppendRequest], events: u64) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("events.db"))?;
    store.migrate().await?;
    let started = Instant::now();
    for request in requests {
        store.append(request.clone()).await?;
    }
    Ok(rate(events, started))
}

async fn sqlite_raw(requests: &[AppendRequest], events: u64) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.db");
    SqliteStore::open(&path)?.migrate().await?;
    let mut raw = RawSqlite::open(&path)?;
    let started = Instant::now();
    for request in requests {
        raw.append(request)?;
    }
    Ok(rate(events, started))
}

async fn pg_ours(requests: &[AppendRequest], events: u64) -> anyhow::Result<f64> {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect_with(config, PoolOptions::new(2))?;
    store.migrate().await?;
    let started = Instant::now();
    for request in requests {
        store.append(request.clone()).await?;
    }
    Ok(rate(events, started))
}

async fn pg_raw(requests: &[AppendRequest], events: u64) -> anyhow::Result<f64> {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    PgStore::connect_with(config.clone(), PoolOptions::new(1))?
        .migrate()
        .await?;
    let mut raw = RawPg::connect(&config).await?;
    let started = Instant::now();
    for request in requests {
        raw.append(request).await?;
    }
    Ok(rate(events, started))
}

/// Runs the section.
pub async fn run(config: &Config, report: &mut Report) -> anyhow::Result<()> {
    report.section(
        "1. Append overhead",
        "Unconditional appends, one after another, of single events and of 100-event batches (each event with 2 tags). \
         *raw* inserts the identical event and tag rows with the same driver, schema and durability settings, without the store.",
        &["backend", "batch", "factos events/s", "raw events/s", "factos/raw"],
    );
    for size in [1u64, 100] {
        let events = if size == 1 {
            config.single_appends
        } else {
            config.batched_events
        };
        let requests = requests(events / size, size)?;
        for backend in ["SQLite", "PostgreSQL"] {
            let (mut ours, mut raw) = (Vec::new(), Vec::new());
            for _ in 0..config.repeats {
                match backend {
                    "SQLite" => {
                        ours.push(sqlite_ours(&requests, events).await?);
                        raw.push(sqlite_raw(&requests, events).await?);
                    }
                    _ => {
                        ours.push(pg_ours(&requests, events).await?);
                        raw.push(pg_raw(&requests, events).await?);
                    }
                }
            }
            let (ours, raw) = (median(&ours), median(&raw));
            report.row(&[
                backend.into(),
                size.to_string(),
                format!("{ours:.0}"),
                format!("{raw:.0}"),
                format!("{:.2}", ours / raw),
            ]);
        }
    }
    Ok(())
}
