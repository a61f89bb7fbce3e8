//! Append overhead: unconditional appends through the store against raw SQL
//! inserting the identical rows.

use std::time::Instant;

use factos::{AppendRequest, EventStore, StreamId};
use factos_postgres::{PgStore, PoolOptions};
use factos_sqlite::{SqliteStore, Synchronous};

use crate::durability::{Durability, sqlite_label, sqlite_options};
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

async fn sqlite_ours(requests: &[AppendRequest], events: u64, synchronous: Synchronous) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open_with(dir.path().join("events.db"), sqlite_options(synchronous))?;
    store.migrate().await?;
    let started = Instant::now();
    for request in requests {
        store.append(request.clone()).await?;
    }
    Ok(rate(events, started))
}

async fn sqlite_raw(requests: &[AppendRequest], events: u64, synchronous: Synchronous) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.db");
    SqliteStore::open(&path)?.migrate().await?;
    let mut raw = RawSqlite::open(&path, synchronous)?;
    let started = Instant::now();
    for request in requests {
        raw.append(request)?;
    }
    Ok(rate(events, started))
}

async fn pg_ours(requests: &[AppendRequest], events: u64, durability: Durability) -> anyhow::Result<f64> {
    let (config, _) = durability.cluster()?.fresh_schema().await?;
    let store = PgStore::connect_with(config, PoolOptions::new(2))?;
    store.migrate().await?;
    let started = Instant::now();
    for request in requests {
        store.append(request.clone()).await?;
    }
    Ok(rate(events, started))
}

async fn pg_raw(requests: &[AppendRequest], events: u64, durability: Durability) -> anyhow::Result<f64> {
    let (config, _) = durability.cluster()?.fresh_schema().await?;
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

/// The backends a section measures: PostgreSQL with `durability`, and
/// SQLite's two settings next to the durable cluster.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Postgres,
    Sqlite(Synchronous),
}

/// Runs the section (numbered `number`) with `durability`.
pub async fn run(config: &Config, report: &mut Report, durability: Durability, number: &str) -> anyhow::Result<()> {
    let mut backends = vec![Backend::Postgres];
    if durability == Durability::Durable {
        backends.extend([Backend::Sqlite(Synchronous::Full), Backend::Sqlite(Synchronous::Normal)]);
    }
    report.section(
        &format!("{number} Append overhead — {}", heading(durability)),
        "Unconditional appends, one after another, of single events and of 100-event batches (each event with 2 tags). \
         *raw* inserts the identical event and tag rows with the same driver, schema and durability settings, without the \
         store: for PostgreSQL one prepared statement in autocommit (one round trip), for SQLite one transaction of \
         prepared inserts on the calling thread.",
        &["backend", "batch", "factos events/s", "raw events/s", "factos/raw"],
    );
    for size in [1u64, 100] {
        let events = if size == 1 {
            config.single_appends
        } else {
            config.batched_events
        };
        let requests = requests(events / size, size)?;
        for backend in &backends {
            let (mut ours, mut raw) = (Vec::new(), Vec::new());
            // A first, untimed run of each: a fresh cluster creates (and
            // flushes) its WAL segments on first use, which would count
            // against whichever side ran first.
            for repeat in 0..=config.repeats {
                let (mine, theirs) = match *backend {
                    Backend::Sqlite(synchronous) => (
                        sqlite_ours(&requests, events, synchronous).await?,
                        sqlite_raw(&requests, events, synchronous).await?,
                    ),
                    Backend::Postgres => (
                        pg_ours(&requests, events, durability).await?,
                        pg_raw(&requests, events, durability).await?,
                    ),
                };
                if repeat > 0 {
                    ours.push(mine);
                    raw.push(theirs);
                }
            }
            let (ours, raw) = (median(&ours), median(&raw));
            report.row(&[
                match *backend {
                    Backend::Postgres => "PostgreSQL".into(),
                    Backend::Sqlite(synchronous) => sqlite_label(synchronous).into(),
                },
                size.to_string(),
                format!("{ours:.0}"),
                format!("{raw:.0}"),
                format!("{:.2}", ours / raw),
            ]);
        }
    }
    Ok(())
}

/// A section heading's settings.
pub fn heading(durability: Durability) -> String {
    match durability {
        Durability::Durable => format!(
            "{}; {}, {}",
            durability.postgres(),
            sqlite_label(Synchronous::Full),
            sqlite_label(Synchronous::Normal)
        ),
        Durability::Off => durability.postgres().to_owned(),
    }
}
