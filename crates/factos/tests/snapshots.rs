//! Snapshots against the reference store: a decision from any snapshot of
//! its context decides on exactly the state a full fold gives, for random
//! histories, queries and snapshot points; a snapshot of another decider
//! version, or read before tags were added to history, is never used.

use factos::retag::TagHistory;
use factos::snapshot::{JsonState, Snapshot, SnapshotKey, SnapshotStore, Snapshotting};
use factos::{
    DecisionScope, Dispatcher, Error, EventType, ExpectedRevision, JsonCodec, JsonEvent, MemoryStore, Query, QueryItem,
    Recorded, StreamId, Tag, decider,
};
use futures::executor::block_on;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TAGS: [&str; 3] = ["x:1", "x:2", "y:1"];
const STREAMS: [&str; 2] = ["s-1", "s-2"];

/// An event numbered by its place in the history.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Noted {
    n: u64,
    b: bool,
    tags: Vec<String>,
}

impl JsonEvent for Noted {
    fn event_type(&self) -> &'static str {
        if self.b { "B" } else { "A" }
    }
    fn tags(&self) -> Vec<String> {
        self.tags.clone()
    }
}

/// A decider whose state is the numbers of the events it folded, in order
/// (a missing, repeated or reordered event shows), and that rejects every
/// command with that state: the state a decision saw comes back as the
/// domain error.
fn witness() -> impl factos::Decider<Command = (), State = Vec<u64>, Event = Noted, Error = Vec<u64>> + Clone {
    decider(
        Vec::new(),
        |_: &(), seen: &Vec<u64>| Err(seen.clone()),
        |mut seen: Vec<u64>, e: &Noted| {
            seen.push(e.n);
            seen
        },
    )
}

fn snapshotting(
    version: u32,
) -> Snapshotting<impl factos::Decider<Command = (), State = Vec<u64>, Event = Noted, Error = Vec<u64>>, JsonState> {
    // Never offers on its own: the tests plant the snapshots.
    Snapshotting::new(witness(), "witness", version, JsonState).every(u64::MAX)
}

fn seen<T>(outcome: Result<T, Error<Vec<u64>>>) -> Vec<u64> {
    outcome.err().and_then(Error::into_domain).unwrap_or_default()
}

fn arb_event() -> impl Strategy<Value = (bool, Vec<bool>, usize)> {
    (
        any::<bool>(),
        proptest::collection::vec(any::<bool>(), TAGS.len()),
        0..STREAMS.len(),
    )
}

fn arb_item() -> impl Strategy<Value = (Vec<bool>, Vec<bool>)> {
    (
        proptest::collection::vec(any::<bool>(), 2),
        proptest::collection::vec(any::<bool>(), TAGS.len()),
    )
}

fn query_of(items: &[(Vec<bool>, Vec<bool>)]) -> Result<Query, factos::InvalidName> {
    let mut query = Query::all();
    for (types, tags) in items {
        let types = ["A", "B"]
            .iter()
            .zip(types)
            .filter(|(_, on)| **on)
            .map(|(t, _)| EventType::new(*t))
            .collect::<Result<Vec<_>, _>>()?;
        let tags = TAGS
            .iter()
            .zip(tags)
            .filter(|(_, on)| **on)
            .map(|(t, _)| Tag::new(*t))
            .collect::<Result<Vec<_>, _>>()?;
        query = query.or(QueryItem::types(types).with_tags(tags));
    }
    Ok(query)
}

/// A store holding `history`, event `i` numbered `i`.
async fn store_with(history: &[(bool, Vec<bool>, usize)]) -> Result<MemoryStore, Box<dyn std::error::Error>> {
    let store = MemoryStore::new();
    let dispatcher = Dispatcher::new(&store, JsonCodec::new());
    for (n, (b, tags, stream)) in history.iter().enumerate() {
        let tags = TAGS
            .iter()
            .zip(tags)
            .filter(|(_, on)| **on)
            .map(|(t, _)| t.to_string())
            .collect();
        let event = Noted {
            n: n as u64,
            b: *b,
            tags,
        };
        dispatcher
            .append(
                &StreamId::new(STREAMS[*stream])?,
                vec![event],
                ExpectedRevision::Any,
                None,
            )
            .await?;
    }
    Ok(store)
}

/// The snapshot of `version` after the first `k` of `context`'s events.
fn snapshot_after(version: u32, scope: &DecisionScope, context: &[Recorded<Noted>], k: usize) -> Option<Snapshot> {
    let last = context.get(k.checked_sub(1)?)?;
    let state: Vec<u64> = context[..k].iter().map(|e| e.event.n).collect();
    Some(Snapshot {
        key: SnapshotKey::new("witness", version, scope),
        position: last.position,
        revision: last.revision,
        stamp: 0,
        state: serde_json::to_vec(&state).ok()?,
    })
}

async fn query_from_snapshot(
    history: Vec<(bool, Vec<bool>, usize)>,
    items: Vec<(Vec<bool>, Vec<bool>)>,
    point: prop::sample::Index,
) -> TestResult {
    let store = store_with(&history).await?;
    let dispatcher = Dispatcher::new(&store, JsonCodec::new());
    let query = query_of(&items)?;
    let stream = StreamId::new("decisions")?;
    let full = seen(dispatcher.dispatch_context(&witness(), &(), &query, &stream).await);
    let context = dispatcher.read::<Noted>(&query).await?.events;
    assert_eq!(full, context.iter().map(|e| e.event.n).collect::<Vec<_>>());

    let scope = DecisionScope::Query(query.clone());
    if let Some(snapshot) = snapshot_after(1, &scope, &context, point.index(context.len() + 1)) {
        assert!(store.save_snapshot(snapshot).await?);
    }
    let from_snapshot = seen(
        dispatcher
            .dispatch_context_snapshotted(&snapshotting(1), &(), &query, &stream)
            .await,
    );
    assert_eq!(from_snapshot, full);
    Ok(())
}

async fn stream_from_snapshot(
    history: Vec<(bool, Vec<bool>, usize)>,
    which: usize,
    point: prop::sample::Index,
) -> TestResult {
    let store = store_with(&history).await?;
    let dispatcher = Dispatcher::new(&store, JsonCodec::new());
    let stream = StreamId::new(STREAMS[which])?;
    let full = seen(dispatcher.dispatch_stream(&witness(), &(), &stream).await);
    let context = dispatcher
        .load_stream(&witness(), &stream)
        .await
        .map_err(|e| format!("{:?}", e.into_domain()))?
        .events;
    assert_eq!(full.len(), context.len());

    let scope = DecisionScope::Stream(stream.clone());
    if let Some(snapshot) = snapshot_after(1, &scope, &context, point.index(context.len() + 1)) {
        assert!(store.save_snapshot(snapshot).await?);
    }
    let from_snapshot = seen(
        dispatcher
            .dispatch_stream_snapshotted(&snapshotting(1), &(), &stream)
            .await,
    );
    assert_eq!(from_snapshot, full);
    Ok(())
}

async fn other_version_unused(
    history: Vec<(bool, Vec<bool>, usize)>,
    point: prop::sample::Index,
    old: u32,
) -> TestResult {
    let store = store_with(&history).await?;
    let dispatcher = Dispatcher::new(&store, JsonCodec::new());
    let query = Query::all();
    let stream = StreamId::new("decisions")?;
    let context = dispatcher.read::<Noted>(&query).await?.events;
    let scope = DecisionScope::Query(query.clone());
    // An old version's snapshot whose state decodes but is wrong for the
    // current fold.
    let mut snapshot = snapshot_after(old, &scope, &context, point.index(context.len()) + 1).ok_or("no events")?;
    snapshot.state = serde_json::to_vec(&vec![u64::MAX])?;
    assert!(store.save_snapshot(snapshot).await?);
    let full: Vec<u64> = (0..history.len() as u64).collect();
    let current = seen(
        dispatcher
            .dispatch_context_snapshotted(&snapshotting(3), &(), &query, &stream)
            .await,
    );
    assert_eq!(current, full);
    Ok(())
}

fn run(check: impl std::future::Future<Output = TestResult>) -> Result<(), TestCaseError> {
    block_on(check).map_err(|e| TestCaseError::fail(e.to_string()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_query_decision_from_any_snapshot_sees_the_full_fold(
        history in proptest::collection::vec(arb_event(), 0..40),
        items in proptest::collection::vec(arb_item(), 0..3),
        point in any::<prop::sample::Index>(),
    ) {
        run(query_from_snapshot(history, items, point))?;
    }

    #[test]
    fn a_stream_decision_from_any_snapshot_sees_the_full_fold(
        history in proptest::collection::vec(arb_event(), 0..40),
        which in 0..STREAMS.len(),
        point in any::<prop::sample::Index>(),
    ) {
        run(stream_from_snapshot(history, which, point))?;
    }

    #[test]
    fn a_snapshot_of_another_version_is_never_used(
        history in proptest::collection::vec(arb_event(), 1..30),
        point in any::<prop::sample::Index>(),
        old in 0u32..3,
    ) {
        run(other_version_unused(history, point, old))?;
    }
}

/// Tags added to history change what a query matches: a snapshot read
/// before the publish is dropped, and one offered from such a read is
/// refused.
#[test]
fn a_snapshot_read_before_tags_were_added_is_never_used() -> TestResult {
    block_on(async {
        let untagged = vec![(false, vec![false; TAGS.len()], 0); 6];
        let store = store_with(&untagged).await?;
        let dispatcher = Dispatcher::new(&store, JsonCodec::new());
        let query = Query::from(QueryItem::tags([Tag::new("x:1")?]));
        let scope = DecisionScope::Query(query.clone());
        let stream = StreamId::new("decisions")?;
        let witness = snapshotting(1);

        // Nothing matches yet: a snapshot of the empty fold at position 6.
        let key = SnapshotKey::new("witness", 1, &scope);
        let empty = Snapshot {
            key: key.clone(),
            position: factos::Position::new(6),
            revision: factos::StreamRevision::new(5),
            stamp: 0,
            state: serde_json::to_vec(&Vec::<u64>::new())?,
        };
        assert!(store.save_snapshot(empty.clone()).await?);
        assert_eq!(
            seen(
                dispatcher
                    .dispatch_context_snapshotted(&witness, &(), &query, &stream)
                    .await
            ),
            Vec::<u64>::new()
        );

        // Events 1 and 4 get the tag.
        let positions = [2, 5].map(factos::Position::new);
        store
            .stage_tags(
                "x",
                positions
                    .iter()
                    .map(|p| Ok((*p, Tag::new("x:1")?)))
                    .collect::<Result<_, factos::InvalidName>>()?,
            )
            .await?;
        assert_eq!(store.publish_tags("x").await?, 2);

        assert_eq!(
            seen(
                dispatcher
                    .dispatch_context_snapshotted(&witness, &(), &query, &stream)
                    .await
            ),
            vec![1, 4]
        );
        // A save of a state read before the publish is refused.
        assert!(!store.save_snapshot(empty).await?);
        let (_, read) = store.begin_decision_from_snapshot(&scope, &key).await?;
        assert_eq!((read.snapshot, read.stamp), (None, 1));
        Ok(())
    })
}

/// Decisions offer snapshots as they go: with one every 3 events, a
/// capacity rule over 40 sales still stops at its capacity, and the
/// newest snapshot holds the state at its position.
#[test]
fn offered_snapshots_keep_a_capacity_rule_exact() -> TestResult {
    block_on(async {
        let store = MemoryStore::new();
        let dispatcher = Dispatcher::new(&store, JsonCodec::new());
        let query = Query::from(QueryItem::tags([Tag::new("x:1")?]));
        let stream = StreamId::new("sales")?;
        let capacity = 25;
        let sell = decider(
            0u64,
            move |n: &u64, sold: &u64| {
                if *sold < capacity {
                    Ok(vec![Noted {
                        n: *n,
                        b: false,
                        tags: vec!["x:1".into()],
                    }])
                } else {
                    Err(*sold)
                }
            },
            |sold, _: &Noted| sold + 1,
        );
        let sell = Snapshotting::new(sell, "sell", 1, JsonState).every(3);
        let mut sold = 0;
        for n in 0..40 {
            if dispatcher
                .dispatch_context_snapshotted(&sell, &n, &query, &stream)
                .await
                .is_ok()
            {
                sold += 1;
            }
        }
        assert_eq!(sold, capacity);

        let scope = DecisionScope::Query(query);
        let (_, read) = store.begin_decision_from_snapshot(&scope, &sell.key(&scope)).await?;
        let snapshot = read.snapshot.ok_or("no snapshot was offered")?;
        let state: u64 = serde_json::from_slice(&snapshot.state)?;
        assert_eq!(state, snapshot.position.value());
        assert_eq!(state + read.events.len() as u64, capacity);
        Ok(())
    })
}
