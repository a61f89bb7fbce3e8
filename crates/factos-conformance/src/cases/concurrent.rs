//! Concurrent checks modelled on the public DCB load checks: consistency of
//! accepted conditional appends, monotonic positions for readers, and
//! parallel unrelated writers.
//!
//! The concurrent parties are futures joined on one task. Each talks to the
//! store through [`Interleave`], which yields at every store call with a
//! seeded schedule, so the parties interleave even on a store that never
//! waits; on a database-backed store they also overlap inside the server.

use std::cell::Cell;
use std::collections::BTreeSet;

use factos::{
    AppendCondition, AppendRequest, Committed, DecisionScope, EventId, LocalEventStore, NewEvent, Position, Query,
    QueryItem, ReadOptions, StoreError, StoredEvent,
};
use futures::future::join_all;
use proptest::prelude::Rng;
use proptest::test_runner::TestRng;

use crate::capabilities::{Capabilities, assert_query_conditions_refused};
use crate::fixtures::{CaseResult, event, rng, stream, tag, ty};
use crate::interleave::Interleave;

pub(crate) const TYPES: [&str; 3] = ["A", "B", "C"];
pub(crate) const TAGS: [&str; 4] = ["t0", "t1", "t2", "t3"];

pub(crate) fn random_event(rng: &mut TestRng) -> NewEvent {
    let event_type = TYPES[rng.random_range(0..TYPES.len())];
    let tags: Vec<&str> = TAGS.iter().copied().filter(|_| rng.random_bool(0.4)).collect();
    event(rng, event_type, &tags, b"{}")
}

pub(crate) fn random_query(rng: &mut TestRng) -> Query {
    let items = rng.random_range(0..=3);
    Query::new((0..items).map(|_| {
        let types = TYPES
            .iter()
            .filter(|_| rng.random_bool(0.4))
            .map(|t| ty(t))
            .collect::<Vec<_>>();
        let tags = TAGS
            .iter()
            .filter(|_| rng.random_bool(0.3))
            .map(|t| tag(t))
            .collect::<Vec<_>>();
        QueryItem::types(types).with_tags(tags)
    }))
}

struct Accepted {
    query: Query,
    read: Vec<EventId>,
    first_new: Position,
}

impl Accepted {
    fn new(query: Query, read: &[StoredEvent], committed: &Committed) -> Self {
        Self {
            query,
            read: read.iter().map(|e| e.id).collect(),
            first_new: committed.records[0].position,
        }
    }
}

/// 20 concurrent appenders with random queries (0–3 items over several types
/// and tags) append with conditions from their own reads. Afterwards, for
/// every accepted append, the events matching its query with positions below
/// its first new event are exactly the events its read returned.
pub async fn accepted_conditional_appends_saw_their_whole_context<S: LocalEventStore>(
    store: &S,
    caps: Capabilities,
) -> CaseResult {
    if !caps.query_conditions {
        return Ok(assert_query_conditions_refused(store).await?);
    }
    consistency_with_seed(store, 0).await
}

/// [`accepted_conditional_appends_saw_their_whole_context`] with the random
/// queries, events and schedules of `seed`, for stress tests that repeat it.
pub async fn consistency_with_seed<S: LocalEventStore>(store: &S, seed: u64) -> CaseResult {
    let seed = seed * 100_000;
    let appenders = (0..20u64).map(|writer| async move {
        let mut rng = rng(seed + 1_000 + writer);
        let store = Interleave::new(store, seed + 2_000 + writer);
        let mut accepted = Vec::new();
        for _ in 0..10 {
            let query = random_query(&mut rng);
            let read = store.read(&query, ReadOptions::forwards()).await?;
            let condition = AppendCondition::new(query.clone(), read.last().map(|e| e.position));
            let events = (0..rng.random_range(1..=2)).map(|_| random_event(&mut rng)).collect();
            match store
                .append(AppendRequest::new(stream(&format!("writer-{writer}")), events).condition(condition))
                .await
            {
                Ok(committed) => accepted.push(Accepted::new(query, &read, &committed)),
                // A failed condition, or a transient conflict between
                // concurrent transactions: either way nothing was written.
                Err(rejected) if rejected.is_conflict() => {}
                Err(other) => return Err(other),
            }
        }
        Ok::<_, StoreError>(accepted)
    });
    check_contexts(store, join_all(appenders).await, "conditional append").await
}

/// While writers append, a reader repeatedly reading the newest events never
/// sees a position appear below one it has already seen.
pub async fn readers_never_see_positions_appear_below_seen_ones<S: LocalEventStore>(store: &S) -> CaseResult {
    monotonic_positions_with_seed(store, 0, 8).await
}

/// `writers` concurrent writers, each appending `rounds` batches of one to
/// three random events to a stream of its own through [`Interleave`] (with
/// the events and schedules of `seed`), counting in `finished` those that
/// are done.
pub(crate) fn random_appenders<'a, S: LocalEventStore>(
    store: &'a S,
    seed: u64,
    writers: usize,
    rounds: usize,
    finished: &'a Cell<usize>,
) -> impl Iterator<Item = impl Future<Output = Result<(), StoreError>> + 'a> + 'a {
    (0..writers as u64).map(move |writer| async move {
        let mut rng = rng(seed + 3_000 + writer);
        let store = Interleave::new(store, seed + 4_000 + writer);
        let mut outcome = Ok(());
        for _ in 0..rounds {
            let events = (0..rng.random_range(1..=3)).map(|_| random_event(&mut rng)).collect();
            if let Err(e) = store
                .append(AppendRequest::new(stream(&format!("writer-{writer}")), events))
                .await
            {
                outcome = Err(e);
                break;
            }
        }
        finished.set(finished.get() + 1);
        outcome
    })
}

/// [`readers_never_see_positions_appear_below_seen_ones`] with `writers`
/// concurrent writers and the random events and schedules of `seed`.
pub async fn monotonic_positions_with_seed<S: LocalEventStore>(store: &S, seed: u64, writers: usize) -> CaseResult {
    let seed = seed * 100_000;
    let finished = Cell::new(0usize);
    let appenders = random_appenders(store, seed, writers, 25, &finished);
    let reader = async {
        let store = Interleave::new(store, seed + 5_000);
        let mut seen = BTreeSet::new();
        let mut reads = 0usize;
        loop {
            let writers_done = finished.get() == writers;
            let newest = store.read(&Query::all(), ReadOptions::backwards().limit(20)).await?;
            let highest_before = seen.last().copied();
            for record in &newest {
                if seen.insert(record.position) {
                    assert!(
                        highest_before.is_none_or(|h| record.position > h),
                        "position {} became visible after position {:?} had been read",
                        record.position,
                        highest_before
                    );
                }
            }
            reads += 1;
            if writers_done {
                return Ok::<_, StoreError>(reads);
            }
        }
    };
    let (written, reads) = futures::join!(join_all(appenders), reader);
    for outcome in written {
        outcome?;
    }
    assert!(reads? > 1, "the reader must have read while writers were appending");
    Ok(())
}

/// Appenders that each use their own tag, with conditions on it, never
/// conflict with one another.
pub async fn unrelated_conditional_appends_never_conflict<S: LocalEventStore>(
    store: &S,
    caps: Capabilities,
) -> CaseResult {
    if !caps.query_conditions {
        return Ok(assert_query_conditions_refused(store).await?);
    }
    unrelated_writers_with_seed(store, 0).await
}

/// [`unrelated_conditional_appends_never_conflict`] with the schedules of
/// `seed`.
pub async fn unrelated_writers_with_seed<S: LocalEventStore>(store: &S, seed: u64) -> CaseResult {
    let seed = seed * 100_000;
    let appenders = (0..16u64).map(|writer| async move {
        let mut rng = rng(seed + 6_000 + writer);
        let store = Interleave::new(store, seed + 7_000 + writer);
        let own = format!("owner:{writer}");
        let boundary = Query::from(QueryItem::tags([tag(&own)]));
        for round in 0..5 {
            let read = store.read(&boundary, ReadOptions::forwards()).await?;
            assert_eq!(
                read.len(),
                round,
                "writer {writer} must see exactly its own earlier events"
            );
            let condition = AppendCondition::new(boundary.clone(), read.last().map(|e| e.position));
            let new = event(&mut rng, TYPES[round % TYPES.len()], &[own.as_str(), "shared"], b"{}");
            match store
                .append(AppendRequest::new(stream(&format!("writer-{writer}")), vec![new]).condition(condition))
                .await
            {
                Ok(_) => {}
                Err(StoreError::ConditionFailed(failed)) => {
                    panic!("writer {writer} conflicted on an unrelated event: {failed}")
                }
                Err(other) => return Err(other),
            }
        }
        Ok::<_, StoreError>(())
    });
    for outcome in join_all(appenders).await {
        outcome?;
    }
    assert_eq!(store.read(&Query::all(), ReadOptions::forwards()).await?.len(), 80);
    Ok(())
}

/// 20 concurrent deciders with random queries read through
/// `begin_decision` and append through `commit_decision` with the condition
/// of what they read. Afterwards, for every accepted decision, the events
/// matching its query with positions below its first new event are exactly
/// the events its read returned: the decision flow of the backend (a held
/// transaction, or an optimistic read checked at commit) never accepts a
/// decision on a stale context.
pub async fn accepted_decisions_saw_their_whole_context<S: LocalEventStore>(
    store: &S,
    caps: Capabilities,
) -> CaseResult {
    if !caps.query_conditions {
        return Ok(assert_query_conditions_refused(store).await?);
    }
    decisions_with_seed(store, 0).await
}

/// [`accepted_decisions_saw_their_whole_context`] with the random queries,
/// events and schedules of `seed`.
pub async fn decisions_with_seed<S: LocalEventStore>(store: &S, seed: u64) -> CaseResult {
    let seed = seed * 100_000;
    let deciders = (0..20u64).map(|writer| async move {
        let mut rng = rng(seed + 8_000 + writer);
        let store = Interleave::new(store, seed + 9_000 + writer);
        let mut accepted = Vec::new();
        for _ in 0..8 {
            let query = random_query(&mut rng);
            let (decision, read) = match store.begin_decision(&DecisionScope::Query(query.clone())).await {
                Ok(begun) => begun,
                Err(rejected) if rejected.is_conflict() => continue,
                Err(other) => return Err(other),
            };
            let condition = AppendCondition::new(query.clone(), read.last().map(|e| e.position));
            let events = (0..rng.random_range(1..=2)).map(|_| random_event(&mut rng)).collect();
            let request = AppendRequest::new(stream(&format!("decider-{writer}")), events).condition(condition);
            match store.commit_decision(decision, request).await {
                Ok(committed) => accepted.push(Accepted::new(query, &read, &committed)),
                Err(rejected) if rejected.is_conflict() => {}
                Err(other) => return Err(other),
            }
        }
        Ok::<_, StoreError>(accepted)
    });
    check_contexts(store, join_all(deciders).await, "decision").await
}

/// Gathers what the concurrent parties accepted and checks, for every
/// accepted append, that the events matching its query below its first new
/// event are exactly the ones its read returned.
async fn check_contexts<S: LocalEventStore>(
    store: &S,
    outcomes: Vec<Result<Vec<Accepted>, StoreError>>,
    what: &str,
) -> CaseResult {
    let mut accepted = Vec::new();
    for outcome in outcomes {
        accepted.extend(outcome?);
    }
    assert!(!accepted.is_empty(), "no {what} was accepted");
    let log = store.read(&Query::all(), ReadOptions::forwards()).await?;
    for append in &accepted {
        let context: Vec<EventId> = log
            .iter()
            .filter(|e| e.position < append.first_new && e.matches(&append.query))
            .map(|e| e.id)
            .collect();
        assert_eq!(
            context, append.read,
            "the append at {} was accepted although its read missed matching events (query {:?})",
            append.first_new, append.query
        );
    }
    Ok(())
}
