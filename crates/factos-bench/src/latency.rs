//! Section 4, dispatch latency of the ticket workload, one writer.

use std::time::Instant;

use factos::{Dispatcher, EventStore, JsonCodec};
use factos_postgres::{PgStore, PoolOptions};
use factos_sqlite::SqliteStore;
use factos_test_postgres::Cluster;

use crate::stats::{micros, percentile_of};
use crate::workload::{Buy, TicketSold, box_office, concert_query, concert_stream};
use crate::{Config, Report};

async fn measure<S: EventStore>(store: &S, dispatches: u32) -> anyhow::Result<(f64, f64)> {
    let dispatcher = Dispatcher::new(store, JsonCodec::<TicketSold>::new());
    let (query, stream) = (concert_query(1), concert_stream(1));
    let mut latencies = Vec::new();
    for buyer in 0..dispatches {
        let started = Instant::now();
        dispatcher
            .dispatch_context(&box_office(u32::MAX), &Buy { concert: 1, buyer }, &query, &stream)
            .await?;
        latencies.push(started.elapsed());
    }
    let latencies = micros(&latencies);
    Ok((percentile_of(&latencies, 50.0), percentile_of(&latencies, 99.0)))
}

/// Runs the section.
pub async fn run(config: &Config, report: &mut Report) -> anyhow::Result<()> {
    report.section(
        "8. Dispatch latency — PostgreSQL durability off, SQLite synchronous=FULL (its default)",
        "`dispatch_context` of the ticket workload (read the concert's sales, decide, append with the condition), one writer, \
         one dispatch after another; the context grows by one event per dispatch.",
        &["backend", "dispatches", "p50 µs", "p99 µs"],
    );
    let dir = tempfile::tempdir()?;
    let sqlite = SqliteStore::open(dir.path().join("events.db"))?;
    sqlite.migrate().await?;
    let (p50, p99) = measure(&sqlite, config.latency_dispatches).await?;
    report.row(&[
        "SQLite".into(),
        config.latency_dispatches.to_string(),
        format!("{p50:.0}"),
        format!("{p99:.0}"),
    ]);
    let (pg_config, _) = Cluster::shared()?.fresh_schema().await?;
    let pg = PgStore::connect_with(pg_config, PoolOptions::new(2))?;
    pg.migrate().await?;
    let (p50, p99) = measure(&pg, config.latency_dispatches).await?;
    report.row(&[
        "PostgreSQL".into(),
        config.latency_dispatches.to_string(),
        format!("{p50:.0}"),
        format!("{p99:.0}"),
    ]);
    Ok(())
}
