//! Decisions read optimistically; after a lost race, decisions on the scope
//! take turns, never blocking any write, and wait for a turn only up to
//! their time limit; an abandoned one writes nothing and lets the next
//! writer in.

use std::time::{Duration, Instant};

use factos::{
    AppendCondition, AppendRequest, DecisionScope, EventId, EventStore, EventType, NewEvent, Query, QueryItem,
    ReadOptions, StoreError, StreamId, Tag,
};
use factos_sqlite::{SqliteError, SqliteOptions, SqliteStore};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn sale() -> Result<NewEvent, factos::InvalidName> {
    Ok(NewEvent::new(EventId::random(), EventType::new("Sold")?, Vec::new()).with_tags([Tag::new("concert:1")?]))
}

fn contended_store(
    dir: &std::path::Path,
    decision_timeout: Duration,
) -> Result<SqliteStore, Box<dyn std::error::Error + Send + Sync>> {
    let options = SqliteOptions {
        decision_timeout,
        ..SqliteOptions::default()
    };
    Ok(SqliteStore::open_with(dir.join("events.db"), options)?)
}

fn concert() -> Result<Query, factos::InvalidName> {
    Ok(Query::from(QueryItem::tags([Tag::new("concert:1")?])))
}

fn decide(after: Option<factos::Position>) -> Result<AppendRequest, Box<dyn std::error::Error + Send + Sync>> {
    Ok(AppendRequest::new(StreamId::new("decider")?, vec![sale()?]).condition(AppendCondition::new(concert()?, after)))
}

/// Loses one race on the concert's scope, so that its next decisions take
/// turns.
async fn lose_a_race(store: &SqliteStore) -> TestResult {
    let scope = DecisionScope::Query(concert()?);
    let (decision, seen) = store.begin_decision(&scope).await?;
    assert!(seen.is_empty());
    let racer = store
        .append(AppendRequest::new(StreamId::new("racer")?, vec![sale()?]))
        .await?;
    match store.commit_decision(decision, decide(None)?).await {
        Err(StoreError::ConditionFailed(failed)) => assert_eq!(failed.conflicting, racer.records[0].position),
        other => panic!("expected the lost race to be refused, got {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_that_lost_a_race_takes_turns_and_never_blocks_writes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = contended_store(dir.path(), Duration::from_secs(5))?;
    store.migrate().await?;
    lose_a_race(&store).await?;
    let scope = DecisionScope::Query(concert()?);

    // The scope is contended: this decision takes its turn and keeps it
    // while open.
    let (decision, seen) = store.begin_decision(&scope).await?;
    assert_eq!(seen.len(), 1);
    // An unrelated append from another task, and one from this very task,
    // go through at once although the decision is open.
    let other = store.clone();
    let elsewhere = tokio::spawn(async move {
        let stream = StreamId::new("elsewhere")?;
        let unrelated = NewEvent::new(EventId::random(), EventType::new("Noted")?, Vec::new());
        other.append(AppendRequest::new(stream, vec![unrelated])).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    tokio::time::timeout(Duration::from_secs(2), elsewhere)
        .await
        .map_err(|_| "an unrelated append waited for an open decision")???;
    let own = NewEvent::new(EventId::random(), EventType::new("Noted")?, Vec::new());
    tokio::time::timeout(
        Duration::from_secs(2),
        store.append(AppendRequest::new(StreamId::new("own")?, vec![own])),
    )
    .await
    .map_err(|_| "an append from the deciding task waited for its own decision")??;

    // Another decision on the same scope waits for this one's turn, and
    // then reads what it appended: it cannot have invalidated it.
    let next = store.clone();
    let waiting = tokio::spawn(async move {
        let (decision, seen) = next.begin_decision(&DecisionScope::Query(concert()?)).await?;
        next.abandon_decision(decision).await;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(seen.len())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiting.is_finished(),
        "a second decision on the scope did not wait for its turn"
    );
    store.commit_decision(decision, decide(Some(seen[0].position))?).await?;
    assert_eq!(waiting.await??, 2, "the next decision reads the first one's event");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_waits_for_its_turn_at_most_the_decision_timeout() -> TestResult {
    let dir = tempfile::tempdir()?;
    let limit = Duration::from_millis(300);
    let store = contended_store(dir.path(), limit)?;
    store.migrate().await?;
    lose_a_race(&store).await?;
    let scope = DecisionScope::Query(concert()?);
    let (held, _) = store.begin_decision(&scope).await?;

    let started = Instant::now();
    let refused = store.begin_decision(&scope).await.err();
    let waited = started.elapsed();
    let timed_out = match &refused {
        Some(StoreError::Backend(source)) => source
            .downcast_ref::<SqliteError>()
            .is_some_and(SqliteError::is_timeout),
        _ => false,
    };
    assert!(timed_out, "expected the decision time limit, got {refused:?}");
    assert!(
        waited >= limit && waited < limit * 10,
        "waited {waited:?} for a limit of {limit:?}"
    );

    // Once the holder gives up, the scope is free again.
    store.abandon_decision(held).await;
    let (decision, _) = store.begin_decision(&scope).await?;
    store.abandon_decision(decision).await;
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

/// Dispatchers racing on one context all get through: a decision that lost
/// a race takes turns with every other decision on the scope until the
/// contention is over, so a dispatch loses at most the races its racers
/// had begun before its first loss. Two dispatchers: its second attempt
/// can lose to a decision begun before its first loss was marked, its third
/// holds the turn against every later one; four attempts leave one spare.
/// (Before the writer marked the loss itself, the winner's next decision
/// could begin without a turn again and again: some dispatches lost all
/// sixteen default attempts.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatchers_racing_on_one_context_never_run_out_of_attempts() -> TestResult {
    use factos::{Dispatcher, Error, JsonCodec, RetryPolicy};
    use factos_conformance::tickets::{Buy, TicketSold, box_office, concert_query, concert_stream};

    const DISPATCHERS: u32 = 2;
    const DISPATCHES: u32 = 400;
    let dir = tempfile::tempdir()?;
    let options = SqliteOptions {
        synchronous: factos_sqlite::Synchronous::Full,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(dir.path().join("events.db"), options)?;
    store.migrate().await?;
    let tasks: Vec<_> = (0..DISPATCHERS)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let dispatcher =
                    Dispatcher::new(&store, JsonCodec::<TicketSold>::new()).with_retry(RetryPolicy::attempts(4));
                let mut gave_up = Vec::new();
                for buyer in n * DISPATCHES..(n + 1) * DISPATCHES {
                    let buy = Buy { concert: 0, buyer };
                    match dispatcher
                        .dispatch_context(&box_office(u32::MAX), &buy, &concert_query(0), &concert_stream(0))
                        .await
                    {
                        Ok(_) => {}
                        Err(Error::AppendConditionFailed { attempts, .. }) => gave_up.push(attempts),
                        Err(other) => return Err(other.to_string()),
                    }
                }
                Ok(gave_up)
            })
        })
        .collect();
    let mut gave_up = Vec::new();
    for task in tasks {
        gave_up.extend(task.await??);
    }
    assert!(gave_up.is_empty(), "{} dispatches ran out of attempts", gave_up.len());
    let stored = store.read(&concert_query(0), ReadOptions::forwards()).await?;
    assert_eq!(stored.len() as u32, DISPATCHERS * DISPATCHES);
    Ok(())
}
