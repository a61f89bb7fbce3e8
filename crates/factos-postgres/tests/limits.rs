//! What one large request may cost everyone else, on a server with stock
//! settings (`max_locks_per_transaction` 64, `max_connections` 100): the
//! lock table is shared by every database of the server, so no request of
//! any size may fill it and make other requests fail.

use std::time::Duration;

use factos::{
    AppendCondition, AppendRequest, DecisionScope, EventId, EventStore, EventType, NewEvent, Query, QueryItem,
    QueryLimits, ReadOptions, StreamId, Tag,
};
use factos_postgres::{LockMode, PgStore, PoolOptions};
use factos_test_postgres::Cluster;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const WRITERS: usize = 16;
const APPENDS_PER_WRITER: usize = 20;

fn event(writer: usize, n: usize) -> Result<NewEvent, factos::InvalidName> {
    Ok(NewEvent::new(EventId::random(), EventType::new("Small")?, Vec::new())
        .with_tags([Tag::new(format!("writer:{writer}"))?, Tag::new(format!("n:{n}"))?]))
}

/// A query of `items` items, one tag each, none of which any event carries.
fn huge_query(items: usize) -> Result<Query, factos::InvalidName> {
    (0..items)
        .map(|i| Ok(QueryItem::types([EventType::new("Small")?]).with_tags([Tag::new(format!("absent:{i}"))?])))
        .collect()
}

async fn huge_requests_beside_small_writers(mode: LockMode) -> TestResult {
    let (config, _) = Cluster::stock()?.fresh_schema().await?;
    // Past the default limits too: the lock bound must not rest on them.
    let limits = QueryLimits {
        max_items: 40_000,
        max_bytes: 4 << 20,
        ..QueryLimits::default()
    };
    let store = PgStore::connect_with(config, PoolOptions::new(24))?
        .with_lock_mode(mode)
        .with_query_limits(limits);
    store.migrate().await?;
    let huge = huge_query(30_000)?;

    let writers = (0..WRITERS).map(|writer| {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0..APPENDS_PER_WRITER {
                let stream = StreamId::new(format!("small-{writer}"))?;
                store
                    .append(AppendRequest::new(stream, vec![event(writer, n)?]))
                    .await?;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
    });
    let writers: Vec<_> = writers.collect();
    let big = {
        let store = store.clone();
        let huge = huge.clone();
        tokio::spawn(async move {
            for round in 0..3 {
                let read = store.read(&huge, ReadOptions::forwards()).await?;
                assert!(read.is_empty());
                let (decision, context) = store.begin_decision(&DecisionScope::Query(huge.clone())).await?;
                assert!(context.is_empty());
                store.abandon_decision(decision).await;
                let stream = StreamId::new(format!("big-{round}"))?;
                let condition = AppendCondition::new(huge.clone(), None);
                store
                    .append(AppendRequest::new(stream, vec![event(WRITERS, round)?]).condition(condition))
                    .await?;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
    };
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(60), writer)
            .await
            .map_err(|_| "a small writer did not finish within 60 s")???;
    }
    tokio::time::timeout(Duration::from_secs(60), big)
        .await
        .map_err(|_| "the huge requests did not finish within 60 s")???;
    let written = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(written.len(), WRITERS * APPENDS_PER_WRITER + 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_query_never_makes_small_writers_fail_with_advisory_locks() -> TestResult {
    huge_requests_beside_small_writers(LockMode::Advisory).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_query_never_makes_small_writers_fail_with_row_locks() -> TestResult {
    huge_requests_beside_small_writers(LockMode::RowLocks).await
}
