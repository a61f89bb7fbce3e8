//! Section 3, context read scaling: a 10-event context read from stores of
//! growing size; and the process's peak memory.

use std::time::Instant;

use factos::{EventStore, ReadOptions, StreamId};
use factos_postgres::{PgStore, PoolOptions};
use factos_sqlite::SqliteStore;
use factos_test_postgres::Cluster;

use crate::stats::{micros, percentile_of};
use crate::workload::{customer_query, order_batch};
use crate::{Config, Report};

const BATCH: u64 = 1_000;
const SAMPLES: u64 = 300;

/// Fills `store` with `size` order events (10 per customer, spread over the
/// whole log), then times reads of random customers' contexts.
async fn measure<S: EventStore>(store: &S, size: u64) -> anyhow::Result<(f64, f64, usize)> {
    let customers = size / 10;
    let stream = StreamId::new("orders")?;
    let mut first = 0;
    while first < size {
        store
            .append(order_batch(first, BATCH.min(size - first), customers, &stream)?)
            .await?;
        first += BATCH;
    }
    let mut latencies = Vec::new();
    let mut matched = 0;
    let mut state = 7u64;
    for _ in 0..SAMPLES {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let customer = (state >> 33) % customers.max(1);
        let query = customer_query(customer)?;
        let started = Instant::now();
        matched = store.read(&query, ReadOptions::forwards()).await?.len();
        latencies.push(started.elapsed());
    }
    let latencies = micros(&latencies);
    Ok((
        percentile_of(&latencies, 50.0),
        percentile_of(&latencies, 99.0),
        matched,
    ))
}

/// The process's peak resident set size in MiB, from `/proc/self/status`.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs the section.
pub async fn run(config: &Config, report: &mut Report) -> anyhow::Result<()> {
    report.section(
        "7. Context read scaling — PostgreSQL durability off, SQLite synchronous=FULL (its default)",
        "Stores of growing size, each event an `OrderPlaced` tagged with its customer (one customer per 10 events, spread \
         over the whole log) and a unique order id. The measured read is one customer's context (type and tag), 300 random \
         customers per size, through `EventStore::read`.",
        &["backend", "events", "events read", "p50 µs", "p99 µs", "p50 / p50 of smallest"],
    );
    for backend in ["SQLite", "PostgreSQL"] {
        let mut smallest = None;
        for &size in &config.scaling_sizes {
            let (p50, p99, matched) = match backend {
                "SQLite" => {
                    let dir = tempfile::tempdir()?;
                    let store = SqliteStore::open(dir.path().join("events.db"))?;
                    store.migrate().await?;
                    measure(&store, size).await?
                }
                _ => {
                    let (config, _) = Cluster::shared()?.fresh_schema().await?;
                    let store = PgStore::connect_with(config, PoolOptions::new(2))?;
                    store.migrate().await?;
                    measure(&store, size).await?
                }
            };
            let base = *smallest.get_or_insert(p50);
            report.row(&[
                backend.into(),
                size.to_string(),
                matched.to_string(),
                format!("{p50:.0}"),
                format!("{p99:.0}"),
                format!("{:.2}", p50 / base),
            ]);
        }
    }
    report.note(&format!(
        "Peak RSS of the benchmark process after building and reading every store above (the largest: {} events): {}.",
        config.scaling_sizes.last().copied().unwrap_or(0),
        peak_rss_mib().map_or_else(|| "unavailable".into(), |m| format!("{m:.0} MiB"))
    ));
    Ok(())
}
