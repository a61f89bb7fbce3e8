//! Decisions read optimistically; one whose race was lost holds the writer
//! from read to commit on its next attempt; an abandoned one writes nothing
//! and lets the next writer in.

use std::time::Duration;

use factos::{
    AppendCondition, AppendRequest, DecisionScope, EventId, EventStore, EventType, NewEvent, Query, QueryItem,
    ReadOptions, StoreError, StreamId, Tag,
};
use factos_sqlite::SqliteStore;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn sale() -> Result<NewEvent, factos::InvalidName> {
    Ok(NewEvent::new(EventId::random(), EventType::new("Sold")?, Vec::new()).with_tags([Tag::new("concert:1")?]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_that_lost_a_race_holds_the_writer_on_its_next_attempt() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("events.db"))?;
    store.migrate().await?;
    let query = Query::from(QueryItem::tags([Tag::new("concert:1")?]));
    let scope = DecisionScope::Query(query.clone());
    let decide = |after| {
        Ok::<_, Box<dyn std::error::Error>>(
            AppendRequest::new(StreamId::new("decider")?, vec![sale()?])
                .condition(AppendCondition::new(query.clone(), after)),
        )
    };

    // First attempt: optimistic. A matching writer gets in after the read,
    // and the decision's append is refused.
    let (decision, seen) = store.begin_decision(&scope).await?;
    assert!(seen.is_empty());
    let racer = store
        .append(AppendRequest::new(StreamId::new("racer")?, vec![sale()?]))
        .await?;
    match store.commit_decision(decision, decide(None)?).await {
        Err(StoreError::ConditionFailed(failed)) => assert_eq!(failed.conflicting, racer.records[0].position),
        other => panic!("expected the lost race to be refused, got {other:?}"),
    }

    // Second attempt: the scope is contended, so the decision holds the
    // writer from its read to its commit; no writer gets in between.
    let (decision, seen) = store.begin_decision(&scope).await?;
    assert_eq!(seen.len(), 1);
    let other = store.clone();
    let late = AppendRequest::new(StreamId::new("racer")?, vec![sale()?]);
    let blocked = tokio::spawn(async move { other.append(late).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !blocked.is_finished(),
        "a writer got in while a held decision waited for its events"
    );
    let committed = store.commit_decision(decision, decide(Some(seen[0].position))?).await?;
    let raced = blocked.await??;
    assert!(committed.records[0].position < raced.records[0].position);

    // Once a held decision committed, the next one is optimistic again:
    // it does not block writers.
    let (decision, _) = store.begin_decision(&scope).await?;
    tokio::time::timeout(
        Duration::from_secs(2),
        store.append(AppendRequest::new(StreamId::new("other")?, vec![sale()?])),
    )
    .await??;
    drop(decision);
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
