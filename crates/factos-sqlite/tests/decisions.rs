//! Decisions hold the write lock from read to commit, and an abandoned one
//! writes nothing and lets the next writer in.

use std::time::Duration;

use factos::{
    AppendCondition, AppendRequest, DecisionScope, EventId, EventStore, EventType, NewEvent, Query, QueryItem,
    ReadOptions, StreamId, Tag,
};
use factos_sqlite::SqliteStore;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn sale() -> Result<NewEvent, factos::InvalidName> {
    Ok(NewEvent::new(EventId::random(), EventType::new("Sold")?, Vec::new()).with_tags([Tag::new("concert:1")?]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_blocks_other_writers_until_it_commits() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("events.db"))?;
    store.migrate().await?;
    let query = Query::from(QueryItem::tags([Tag::new("concert:1")?]));
    let (decision, seen) = store.begin_decision(&DecisionScope::Query(query.clone())).await?;
    assert!(seen.is_empty());

    let other = store.clone();
    let late = AppendRequest::new(StreamId::new("racer")?, vec![sale()?]);
    let racer = tokio::spawn(async move { other.append(late).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!racer.is_finished(), "a writer got in while a decision held the lock");

    let request =
        AppendRequest::new(StreamId::new("decider")?, vec![sale()?]).condition(AppendCondition::new(query, None));
    let committed = store.commit_decision(decision, request).await?;
    let raced = racer.await??;
    assert!(committed.records[0].position < raced.records[0].position);
    Ok(())
}

#[tokio::test]
async fn an_abandoned_decision_writes_nothing_and_releases_the_lock() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("events.db"))?;
    store.migrate().await?;
    let (decision, _) = store
        .begin_decision(&DecisionScope::Stream(StreamId::new("s")?))
        .await?;
    drop(decision);
    let appended = tokio::time::timeout(
        Duration::from_secs(2),
        store.append(AppendRequest::new(StreamId::new("s")?, vec![sale()?])),
    )
    .await??;
    assert_eq!(appended.records[0].position.value(), 1);
    assert_eq!(store.read(&Query::all(), ReadOptions::forwards()).await?.len(), 1);
    Ok(())
}
