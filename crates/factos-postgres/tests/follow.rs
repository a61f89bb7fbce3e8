//! Following the log on the real server, where position order is not
//! commit order: a writer that took its position and has not committed yet
//! is never skipped, with one writer held back on purpose and with many
//! writers committing after random delays.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use factos::{
    AppendRequest, EventId, EventStore, EventType, Follow, NewEvent, Query, ReadOptions, StreamId, Subscription, Tag,
};
use factos_postgres::{PgStore, PoolOptions};
use factos_test_postgres::Cluster;
use proptest::prelude::Rng;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

async fn fresh_store() -> Result<PgStore, Box<dyn std::error::Error + Send + Sync>> {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect_with(config, PoolOptions::new(24))?.with_poll_interval(Duration::from_millis(20));
    store.migrate().await?;
    Ok(store)
}

fn event(name: &str) -> Result<NewEvent, factos::InvalidName> {
    Ok(NewEvent::new(EventId::random(), EventType::new("E")?, name.as_bytes().to_vec()).with_tags([Tag::new("t")?]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_holding_a_lower_position_is_delivered_once_it_commits() -> TestResult {
    let store = fresh_store().await?;
    // Writer A takes its position inside a transaction it keeps open.
    let mut client = store.pool().get().await?;
    let transaction = client.transaction().await?;
    let held = store.in_transaction(&transaction).await?;
    let a = held
        .append(AppendRequest::new(StreamId::new("a")?, vec![event("a")?]))
        .await?;
    // Writer B takes a higher position and commits first.
    let b = store
        .append(AppendRequest::new(StreamId::new("b")?, vec![event("b")?]))
        .await?;
    assert!(a.records[0].position < b.records[0].position);
    let mut subscription = Subscription::new(&store, Query::all(), None);
    // What is readable now (`catch_up` would wait for A, which was running
    // when it was called).
    let mut early = Vec::new();
    while let Some((batch, _)) = subscription.try_next().await? {
        early.extend(batch);
    }
    assert!(
        early.iter().all(|d| d.record.id != b.records[0].id),
        "B must not be delivered while A, below it, is in flight"
    );
    transaction.commit().await?;
    let mut delivered: Vec<EventId> = early.iter().map(|d| d.record.id).collect();
    // Everything committed before this call, waiting for whatever was
    // running then (another test's transaction, say).
    delivered.extend(subscription.catch_up().await?.iter().map(|d| d.record.id));
    assert_eq!(
        delivered,
        vec![a.records[0].id, b.records[0].id],
        "each exactly once, A first"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_writers_with_random_delays_are_each_delivered_exactly_once_in_stream_order() -> TestResult {
    for seed in 0..3u64 {
        let store = fresh_store().await?;
        let writers = (0..12u64).map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut rng = factos_conformance::rng(seed * 100 + writer);
                for n in 0..10 {
                    let stream = StreamId::new(format!("w{writer}"))?;
                    let pause = Duration::from_micros(rng.random_range(0..20_000));
                    if rng.random_bool(0.5) {
                        // Take the position, then wait before committing.
                        let mut client = store.pool().get().await?;
                        let transaction = client.transaction().await?;
                        store
                            .in_transaction(&transaction)
                            .await?
                            .append(AppendRequest::new(stream, vec![event(&format!("{writer}-{n}"))?]))
                            .await?;
                        tokio::time::sleep(pause).await;
                        transaction.commit().await?;
                    } else {
                        tokio::time::sleep(pause).await;
                        store
                            .append(AppendRequest::new(stream, vec![event(&format!("{writer}-{n}"))?]))
                            .await?;
                    }
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        });
        let writers = futures::future::join_all(writers);
        let follower = {
            let store = store.clone();
            tokio::spawn(async move {
                let mut subscription = Subscription::new(&store, Query::all(), None).batch_size(7);
                let mut delivered = Vec::new();
                while delivered.len() < 120 {
                    let batch = tokio::time::timeout(Duration::from_secs(20), subscription.next_batch())
                        .await
                        .map_err(|_| format!("seed {seed}: stalled after {} events", delivered.len()))??;
                    delivered.extend(batch);
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(delivered)
            })
        };
        for writer in writers.await {
            writer??;
        }
        let delivered = follower.await??;
        let ids: Vec<EventId> = delivered.iter().map(|d| d.record.id).collect();
        let unique: BTreeSet<EventId> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "seed {seed}: delivered twice");
        let stored: BTreeSet<EventId> = store
            .read(&Query::all(), ReadOptions::forwards())
            .await?
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(unique, stored, "seed {seed}: every committed event, once");
        let mut heads: BTreeMap<String, u64> = BTreeMap::new();
        for d in &delivered {
            let last = heads.insert(d.record.stream.to_string(), d.record.revision.value());
            assert!(
                last.is_none_or(|r| r < d.record.revision.value()),
                "seed {seed}: stream order"
            );
        }
        assert!(
            store
                .read_after(&Query::all(), delivered.last().map(|d| d.cursor), 10)
                .await?
                .events
                .is_empty()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_horizon_age_shows_how_long_an_open_writer_holds_followers_back() -> TestResult {
    let store = fresh_store().await?;
    let mut client = store.pool().get().await?;
    let transaction = client.transaction().await?;
    store
        .in_transaction(&transaction)
        .await?
        .append(AppendRequest::new(StreamId::new("held")?, vec![event("held")?]))
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let age = store.horizon_age().await?.ok_or("a writer is open")?;
    assert!(age >= Duration::from_millis(300), "{age:?}");
    transaction.rollback().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_waits_for_the_transactions_running_at_the_call_and_no_longer() -> TestResult {
    let store = fresh_store().await?;
    let mut client = store.pool().get().await?;
    let transaction = client.transaction().await?;
    let held = store
        .in_transaction(&transaction)
        .await?
        .append(AppendRequest::new(StreamId::new("held")?, vec![event("held")?]))
        .await?;
    let later = store
        .append(AppendRequest::new(StreamId::new("later")?, vec![event("later")?]))
        .await?;
    let commit_soon = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        transaction.commit().await
    };
    let mut subscription = Subscription::new(&store, Query::all(), None);
    let (caught_up, committed) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(20), subscription.catch_up()),
        commit_soon
    );
    committed?;
    let ids: Vec<EventId> = caught_up
        .map_err(|_| "catch_up never returned")??
        .iter()
        .map(|d| d.record.id)
        .collect();
    assert_eq!(
        ids,
        vec![held.records[0].id, later.records[0].id],
        "both, although one was in flight when catch_up began"
    );
    Ok(())
}
