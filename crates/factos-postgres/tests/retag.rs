//! Tags added to history on the real server, beyond the conformance
//! cases: a retag waits for the transactions running when it starts. Its
//! own binary, so that the transaction it holds open does not hold back
//! the followers of the tests in `follow.rs` (they share one cluster).

use std::time::Duration;

use factos::{AppendRequest, EventId, EventStore, EventType, NewEvent, Query, ReadOptions, StreamId, Tag};
use factos_postgres::{PgStore, PoolOptions};
use factos_test_postgres::Cluster;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn event(name: &str) -> Result<NewEvent, factos::InvalidName> {
    Ok(NewEvent::new(EventId::random(), EventType::new("E")?, name.as_bytes().to_vec()).with_tags([Tag::new("t")?]))
}

/// A retag covers the events committed before it started, including those
/// of a transaction that was still running then: it waits for it, as a
/// catching-up follower does, instead of taking "nothing safe to read yet"
/// for the end of the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retag_waits_for_the_transactions_running_when_it_starts() -> TestResult {
    let (config, _) = Cluster::shared()?.fresh_schema().await?;
    let store = PgStore::connect_with(config, PoolOptions::new(8))?.with_poll_interval(Duration::from_millis(20));
    store.migrate().await?;
    let mut client = store.pool().get().await?;
    let transaction = client.transaction().await?;
    store
        .in_transaction(&transaction)
        .await?
        .append(AppendRequest::new(StreamId::new("held")?, vec![event("held")?]))
        .await?;
    store
        .append(AppendRequest::new(StreamId::new("later")?, vec![event("later")?]))
        .await?;
    let commit_soon = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        transaction.commit().await
    };
    let name_tag =
        |e: &factos::StoredEvent| Tag::new(format!("name:{}", String::from_utf8_lossy(&e.event))).map(|tag| vec![tag]);
    let mut retag = factos::retag::Retag::new("names", name_tag);
    let (report, committed) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(20), retag.run(&store)),
        commit_soon
    );
    committed?;
    let report = report.map_err(|_| "the retag never returned")??;
    assert_eq!((report.examined, report.added), (2, 2), "{report:?}");
    let held = Query::from(factos::QueryItem::tags([Tag::new("name:held")?]));
    assert_eq!(store.read(&held, ReadOptions::forwards()).await?.len(), 1);
    Ok(())
}
