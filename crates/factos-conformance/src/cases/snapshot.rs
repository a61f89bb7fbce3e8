//! Snapshots of long contexts ([`factos::snapshot`]): a decision from a
//! snapshot sees exactly what a full fold sees, a snapshot is found only
//! under its decider, version and scope, adding tags to history retires
//! every snapshot, and offered snapshots keep concurrent decisions exact.

use std::time::{Duration, Instant};

use factos::retag::{LocalTagHistory, Retag};
use factos::snapshot::{JsonState, LocalSnapshotStore, Snapshot, SnapshotKey, SnapshotRead, Snapshotting};
use factos::{
    AppendRequest, DecisionScope, Dispatcher, Error, JsonCodec, JsonEvent, LocalCheckpoints, LocalEventStore,
    LocalFollow, Query, Recorded, StreamId, decider,
};
use serde::{Deserialize, Serialize};

use super::retag::{OrderPlaced, Placed, customer_query, customer_tag, order_rule, retag_under_dispatches};
use crate::fixtures::{CaseResult, event, item, query, rng, stream};

/// An event numbered by its place among the counted ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    /// Its number.
    pub n: u64,
}

impl JsonEvent for Counted {
    fn event_type(&self) -> &'static str {
        "Counted"
    }
    fn tags(&self) -> Vec<String> {
        vec!["counter:1".into()]
    }
}

/// A decider whose state is the numbers of the events it folded, in
/// order, and that rejects every command with that state.
fn witness(
    version: u32,
) -> Snapshotting<impl factos::Decider<Command = (), State = Vec<u64>, Event = Counted, Error = Vec<u64>>, JsonState> {
    let fold = decider(
        Vec::new(),
        |_: &(), seen: &Vec<u64>| Err(seen.clone()),
        |mut seen: Vec<u64>, e: &Counted| {
            seen.push(e.n);
            seen
        },
    );
    // Never offers on its own: the cases save the snapshots.
    Snapshotting::new(fold, "witness", version, JsonState).every(u64::MAX)
}

fn counter() -> Query {
    query([item(&["Counted"], &["counter:1"])])
}

fn seen<T>(outcome: Result<T, Error<Vec<u64>>>) -> Vec<u64> {
    outcome.err().and_then(Error::into_domain).unwrap_or_default()
}

/// Appends `count` counted events to `counted` (numbered from `first`),
/// each after events of another type or tag in another stream.
async fn count<S: LocalEventStore>(store: &S, counted: &StreamId, first: u64, count: u64) -> CaseResult {
    let mut rng = rng(first);
    for n in first..first + count {
        let other_type = event(&mut rng, "Other", &["counter:1"], b"{}");
        let other_tag = event(&mut rng, "Counted", &["counter:2"], b"{}");
        store
            .append(AppendRequest::new(stream("elsewhere"), vec![other_type, other_tag]))
            .await?;
        let payload = serde_json::to_vec(&Counted { n })?;
        let counted_event = event(&mut rng, "Counted", &["counter:1"], &payload);
        store
            .append(AppendRequest::new(counted.clone(), vec![counted_event]))
            .await?;
    }
    Ok(())
}

/// The snapshot of `key` after the first `k` events of `context`, stamped
/// with `stamp`.
fn snapshot_after(key: &SnapshotKey, stamp: u64, context: &[Recorded<Counted>], k: usize) -> Option<Snapshot> {
    let last = context.get(k.checked_sub(1)?)?;
    let state: Vec<u64> = context[..k].iter().map(|e| e.event.n).collect();
    Some(Snapshot {
        key: key.clone(),
        position: last.position,
        revision: last.revision,
        stamp,
        state: serde_json::to_vec(&state).ok()?,
    })
}

/// What a decision from a snapshot of `key` on `scope` reads, ending the
/// decision.
async fn read_from_snapshot<S: LocalSnapshotStore>(
    store: &S,
    scope: &DecisionScope,
    key: &SnapshotKey,
) -> Result<SnapshotRead, factos::StoreError> {
    let (decision, read) = store.begin_decision_from_snapshot(scope, key).await?;
    store.abandon_decision(decision).await;
    Ok(read)
}

/// For snapshots after none, one, some and all of a context's events, on
/// a query and on a stream (among events of other types, tags and
/// streams), a decision from the snapshot sees the full fold.
pub async fn a_decision_from_a_snapshot_sees_what_a_full_fold_sees<S>(store: &S) -> CaseResult
where
    S: LocalSnapshotStore,
{
    let counted = stream("counted");
    count(store, &counted, 0, 12).await?;
    let dispatcher = Dispatcher::new(store, JsonCodec::new());
    let fold = witness(1);
    let decisions = stream("decisions");
    let full: Vec<u64> = (0..12).collect();
    let by_query = dispatcher.read::<Counted>(&counter()).await?.events;
    let by_stream = dispatcher
        .read::<Counted>(&query([item(&["Counted"], &["counter:1"])]))
        .await?
        .events;
    for (scope, context) in [
        (DecisionScope::Query(counter()), &by_query),
        (DecisionScope::Stream(counted.clone()), &by_stream),
    ] {
        let key = fold.key(&scope);
        for k in [0, 1, 5, 11, 12] {
            let stamp = read_from_snapshot(store, &scope, &key).await?.stamp;
            if let Some(snapshot) = snapshot_after(&key, stamp, context, k) {
                assert!(
                    store.save_snapshot(snapshot).await?,
                    "the snapshot after {k} events was not saved"
                );
            }
            let read = read_from_snapshot(store, &scope, &key).await?;
            assert_eq!(read.events.len(), 12 - k, "after a snapshot of {k} events, {scope:?}");
            let decided = match &scope {
                DecisionScope::Query(query) => {
                    dispatcher
                        .dispatch_context_snapshotted(&fold, &(), query, &decisions)
                        .await
                }
                DecisionScope::Stream(stream) => dispatcher.dispatch_stream_snapshotted(&fold, &(), stream).await,
            };
            assert_eq!(
                seen(decided),
                full,
                "a decision from a snapshot of {k} events on {scope:?}"
            );
        }
    }
    Ok(())
}

/// A snapshot is found only under its decider, version and scope, and an
/// earlier one never replaces a later one.
pub async fn a_snapshot_is_found_only_under_its_key_and_moves_only_forwards<S>(store: &S) -> CaseResult
where
    S: LocalSnapshotStore,
{
    let counted = stream("counted");
    count(store, &counted, 0, 4).await?;
    let scope = DecisionScope::Query(counter());
    let context = Dispatcher::new(store, JsonCodec::new())
        .read::<Counted>(&counter())
        .await?
        .events;
    let key = witness(1).key(&scope);
    let stamp = read_from_snapshot(store, &scope, &key).await?.stamp;
    let at = |k| snapshot_after(&key, stamp, &context, k).ok_or("no such snapshot");
    assert!(store.save_snapshot(at(4)?).await?);
    assert!(
        !store.save_snapshot(at(2)?).await?,
        "an earlier snapshot replaced a later one"
    );

    let found = read_from_snapshot(store, &scope, &key).await?;
    assert_eq!((found.snapshot, found.events.len()), (Some(at(4)?), 0));
    let other_scope = DecisionScope::Query(query([item(&["Counted"], &["counter:2"])]));
    for (other, on) in [
        (witness(2).key(&scope), &scope),
        (SnapshotKey::new("another", 1, &scope), &scope),
        (witness(1).key(&other_scope), &other_scope),
    ] {
        let read = read_from_snapshot(store, on, &other).await?;
        assert_eq!(read.snapshot, None, "a snapshot was found under {other:?}");
    }

    Ok(())
}

/// Adding tags to history changes what a query matches: every snapshot is
/// retired, a snapshot read before the publish cannot be saved after it,
/// and decisions fold the newly tagged events.
pub async fn tags_added_to_history_retire_every_snapshot<S>(store: &S) -> CaseResult
where
    S: LocalSnapshotStore + LocalFollow + LocalCheckpoints + LocalTagHistory,
{
    for (order, customer) in [(1, 1), (2, 2), (3, 1)] {
        let old = super::retag::order_without_customer_tag(order, customer);
        store
            .append(AppendRequest::new(stream(&format!("order-{order}")), vec![old]))
            .await?;
    }
    let rule = Snapshotting::new(order_rule(), "orders", 1, JsonState).every(1);
    let scope = DecisionScope::Query(customer_query(1));
    let key = rule.key(&scope);
    let before = read_from_snapshot(store, &scope, &key).await?;
    let none_yet = Snapshot {
        key: key.clone(),
        position: factos::Position::new(3),
        revision: factos::StreamRevision::FIRST,
        stamp: before.stamp,
        state: serde_json::to_vec(&0u32)?,
    };
    assert!(store.save_snapshot(none_yet.clone()).await?);

    Retag::new("customers", customer_tag).run(store).await?;
    let after = read_from_snapshot(store, &scope, &key).await?;
    assert_eq!(
        after.snapshot, None,
        "a snapshot from before the publish was found after it"
    );
    assert_ne!(after.stamp, before.stamp);
    assert_eq!(after.events.len(), 2);
    assert!(
        !store.save_snapshot(none_yet).await?,
        "a snapshot read before the publish was saved after it"
    );

    let placed = place_with_snapshots(store, &rule, 4, 1).await?;
    assert_eq!(placed[0].event.seen, 2, "the decision did not fold the tagged orders");
    Ok(())
}

async fn place_with_snapshots<S, D>(store: &S, rule: &Snapshotting<D, JsonState>, order: u32, customer: u32) -> Placed
where
    S: LocalSnapshotStore,
    D: factos::CommandHandler<Command = (u32, u32), State = u32, Event = OrderPlaced, Error = crate::tickets::SoldOut>,
{
    Dispatcher::new(store, JsonCodec::<OrderPlaced>::new())
        .dispatch_context_snapshotted(
            rule,
            &(order, customer),
            &customer_query(customer),
            &stream(&format!("order-{order}")),
        )
        .await
}

/// The retag case under concurrent dispatches
/// ([`super::a_retag_under_concurrent_dispatches_is_seen_whole_or_not_at_all`]),
/// with the per-customer rule offering a snapshot after every order: no
/// decision sees part of the retag or commits after it on an older
/// context, snapshots or not.
pub async fn a_retag_under_snapshotted_dispatches_is_seen_whole_or_not_at_all<S>(store: &S) -> CaseResult
where
    S: LocalSnapshotStore + LocalFollow + LocalCheckpoints + LocalTagHistory + Sync,
{
    let rule = Snapshotting::new(order_rule(), "orders", 1, JsonState).every(1);
    retag_under_dispatches(store, |order, customer| {
        place_with_snapshots(store, &rule, order, customer)
    })
    .await
}

/// Four dispatchers sell 40 tickets of a 25-seat concert through a rule
/// that offers a snapshot every 3 events: exactly 25 are sold, an offered
/// snapshot is saved without any call waiting for it, and the newest one
/// holds the state at its position.
pub async fn offered_snapshots_keep_concurrent_decisions_exact<S>(store: &S) -> CaseResult
where
    S: LocalSnapshotStore + Sync,
{
    const CAPACITY: u64 = 25;
    let sell = decider(
        0u64,
        |n: &u64, sold: &u64| {
            if *sold < CAPACITY {
                Ok(vec![Counted { n: *n }])
            } else {
                Err(*sold)
            }
        },
        |sold, _: &Counted| sold + 1,
    );
    let sell = Snapshotting::new(sell, "sell", 1, JsonState).every(3);
    let sell = &sell;
    let sellers = (0..4u64).map(|seller| async move {
        let dispatcher = Dispatcher::new(store, JsonCodec::new());
        let mut sold = 0;
        for n in 0..10 {
            let sale = stream(&format!("sale-{seller}-{n}"));
            match dispatcher
                .dispatch_context_snapshotted(sell, &(seller * 10 + n), &counter(), &sale)
                .await
            {
                Ok(_) => sold += 1,
                Err(Error::Domain(_)) => {}
                Err(other) => return Err(other.to_string()),
            }
        }
        Ok(sold)
    });
    let sold: u64 = futures::future::join_all(sellers)
        .await
        .into_iter()
        .collect::<Result<Vec<u64>, String>>()?
        .iter()
        .sum();
    assert_eq!(sold, CAPACITY);

    let scope = DecisionScope::Query(counter());
    let waited = Instant::now();
    let read = loop {
        let read = read_from_snapshot(store, &scope, &sell.key(&scope)).await?;
        if read.snapshot.is_some() || waited.elapsed() > Duration::from_secs(10) {
            break read;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let snapshot = read.snapshot.ok_or("no offered snapshot was saved within 10 s")?;
    let state: u64 = serde_json::from_slice(&snapshot.state)?;
    assert_eq!(
        state + read.events.len() as u64,
        CAPACITY,
        "the snapshot at {} and the events after it",
        snapshot.position
    );
    Ok(())
}
