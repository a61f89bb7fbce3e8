//! Section 3, context read scaling: a 10-event context read from stores of
//! growing size; and the process's peak memory.

use std::time::Instant;

use factos::{EventStore, ReadOptions, StreamId};
use factos_postgres::{PgStore, PoolOptions};
use factos_sqlite::SqliteStore;
use factos_test_postgres::Cluster;

use crate::stats::{micros, percentile_of};
use crate::workload::{customer_query, next_random, order_batch};
use crate::{Config, Report};

const BATCH: u64 = 1_000;
const SAMPLES: u64 = 1_000;

/// Fills `store` with `size` order events (10 per customer, spread over the
/// whole log).
async fn fill<S: EventStore>(store: &S, size: u64) -> anyhow::Result<()> {
    let stream = StreamId::new("orders")?;
    let mut first = 0;
    while first < size {
        store
            .append(order_batch(first, BATCH.min(size - first), size / 10, &stream)?)
            .await?;
        first += BATCH;
    }
    Ok(())
}

/// Times reads of random customers' contexts from every store of `stores`
/// (with its size), interleaved: each round reads once from each store, so
/// that whatever else the machine does slows every size alike. Returns the
/// latencies in microseconds and the events the last read matched, per store.
async fn measure<S: EventStore>(stores: &[(S, u64)]) -> anyhow::Result<Vec<(Vec<f64>, usize)>> {
    let mut results = vec![(Vec::new(), 0); stores.len()];
    let mut state = 7u64;
    for _ in 0..SAMPLES {
        for ((store, size), (latencies, matched)) in stores.iter().zip(&mut results) {
            let query = customer_query(next_random(&mut state, size / 10))?;
            let started = Instant::now();
            *matched = store.read(&query, ReadOptions::forwards()).await?.len();
            latencies.push(started.elapsed());
        }
    }
    Ok(results
        .into_iter()
        .map(|(latencies, matched)| (micros(&latencies), matched))
        .collect())
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
         over the whole log) and a unique order id. The measured read is one customer's context (type and tag), 1,000 random \
         customers per size, through `EventStore::read`; every store of a backend is built first, then the reads \
         alternate between its sizes, so that noise on the machine falls on every size alike.",
        &["backend", "events", "events read", "p50 µs", "p99 µs", "p50 / p50 of smallest"],
    );
    let dir = tempfile::tempdir()?;
    let mut sqlite = Vec::new();
    let mut postgres = Vec::new();
    for &size in &config.scaling_sizes {
        let store = SqliteStore::open(dir.path().join(format!("events-{size}.db")))?;
        store.migrate().await?;
        fill(&store, size).await?;
        sqlite.push((store, size));
        let (pg_config, _) = Cluster::shared()?.fresh_schema().await?;
        let store = PgStore::connect_with(pg_config, PoolOptions::new(2))?;
        store.migrate().await?;
        fill(&store, size).await?;
        postgres.push((store, size));
    }
    let measured = [
        ("SQLite", measure(&sqlite).await?),
        ("PostgreSQL", measure(&postgres).await?),
    ];
    for (backend, results) in measured {
        let smallest = results
            .first()
            .map_or(1.0, |(latencies, _)| percentile_of(latencies, 50.0));
        for (&size, (latencies, matched)) in config.scaling_sizes.iter().zip(results) {
            let p50 = percentile_of(&latencies, 50.0);
            report.row(&[
                backend.into(),
                size.to_string(),
                matched.to_string(),
                format!("{p50:.0}"),
                format!("{:.0}", percentile_of(&latencies, 99.0)),
                format!("{:.2}", p50 / smallest),
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
