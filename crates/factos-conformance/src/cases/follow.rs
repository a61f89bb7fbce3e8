//! Following the log: catch-up subscriptions never skip an event and never
//! deliver one twice, across restarts from a checkpoint, while writers
//! append concurrently; a waiting subscriber wakes up on a commit.
//!
//! Stamped by [`crate::follow_tests!`] for stores that implement the follow
//! contract.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use factos::{
    AppendRequest, Cursor, DecisionScope, EventId, LocalEventStore, LocalFollow, Query, ReadOptions, Subscription,
};
use futures::future::join_all;
use proptest::prelude::Rng;

use super::concurrent::{random_appenders, random_query};
use crate::fixtures::{CaseResult, event, item, query, rng, stream};

/// Every matching event reaches a follower exactly once, in stream order,
/// although it restarts from its checkpoint at random moments while writers
/// append concurrently.
pub async fn followers_get_every_matching_event_once_across_restarts<S>(store: &S) -> CaseResult
where
    S: LocalEventStore + LocalFollow,
{
    follow_with_seed(store, 0, 6).await
}

/// [`followers_get_every_matching_event_once_across_restarts`] with
/// `writers` concurrent writers and the random events, query and schedule
/// of `seed`.
pub async fn follow_with_seed<S>(store: &S, seed: u64, writers: usize) -> CaseResult
where
    S: LocalEventStore + LocalFollow,
{
    let seed = seed * 100_000;
    let query = {
        let mut rng = rng(seed + 1);
        // Never the empty query every time: a narrow one exercises skipping.
        if rng.random_bool(0.5) {
            random_query(&mut rng)
        } else {
            Query::all()
        }
    };
    let finished = Cell::new(0usize);
    let appenders = random_appenders(store, seed, writers, 20, &finished);
    let follower = async {
        let mut rng = rng(seed + 5_000);
        let mut checkpoint: Option<Cursor> = None;
        let mut delivered: Vec<factos::Delivered> = Vec::new();
        loop {
            let writers_done = finished.get() == writers;
            // A restart: a new subscription from the stored checkpoint.
            let mut subscription =
                Subscription::new(store, query.clone(), checkpoint).batch_size(rng.random_range(1..=7));
            for _ in 0..rng.random_range(1..=3) {
                let batch = subscription.catch_up().await?;
                if let Some(last) = batch.last() {
                    assert!(checkpoint.is_none_or(|c| last.cursor > c), "cursors must move forwards");
                }
                delivered.extend(batch);
                checkpoint = subscription.cursor();
                tokio::task::yield_now().await;
            }
            if writers_done {
                // Everything is committed, and catching up returns all that
                // was committed before the call.
                delivered.extend(subscription.catch_up().await?);
                return Ok::<_, factos::StoreError>(delivered);
            }
        }
    };
    let (appended, delivered) = futures::join!(join_all(appenders), follower);
    for outcome in appended {
        outcome?;
    }
    let delivered = delivered?;

    let expected: Vec<EventId> = store
        .read(&query, ReadOptions::forwards())
        .await?
        .into_iter()
        .map(|e| e.id)
        .collect();
    let got: Vec<EventId> = delivered.iter().map(|d| d.record.id).collect();
    let unique: BTreeSet<EventId> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "seed {seed}: an event was delivered twice");
    assert_eq!(
        unique,
        expected.iter().copied().collect::<BTreeSet<_>>(),
        "seed {seed}: the follower must get exactly the matching events"
    );
    assert!(
        delivered.windows(2).all(|w| w[0].cursor < w[1].cursor),
        "seed {seed}: cursors must strictly increase in delivery order"
    );
    let mut heads: BTreeMap<&str, u64> = BTreeMap::new();
    for d in &delivered {
        let last = heads.insert(d.record.stream.as_str(), d.record.revision.value());
        assert!(
            last.is_none_or(|r| r < d.record.revision.value()),
            "seed {seed}: events of one stream must arrive in revision order"
        );
    }
    Ok(())
}

/// A subscriber waiting at the end of the log gets an event committed
/// after it started waiting, and the stream form delivers it too.
pub async fn a_waiting_subscriber_wakes_up_on_a_commit<S>(store: &S) -> CaseResult
where
    S: LocalEventStore + LocalFollow,
{
    use futures::StreamExt;
    let mut rng = rng(60);
    let first = event(&mut rng, "A", &["t0"], b"1");
    store
        .append(AppendRequest::new(stream("s"), vec![first.clone()]))
        .await?;
    let mut subscription = Subscription::new(store, Query::all(), None);
    assert_eq!(subscription.next_batch().await?[0].record.id, first.id);

    let second = event(&mut rng, "A", &["t0"], b"2");
    let append_later = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        store
            .append(AppendRequest::new(stream("s"), vec![second.clone()]))
            .await
    };
    let waiting = tokio::time::timeout(Duration::from_secs(10), subscription.next_batch());
    let (woken, appended) = futures::join!(waiting, append_later);
    appended?;
    let batch = woken.map_err(|_| "the waiting subscriber was not woken within 10 s")??;
    assert_eq!(batch[0].record.id, second.id);

    let mut stream_form = Box::pin(Subscription::new(store, Query::all(), None).into_stream());
    let mut ids = Vec::new();
    while ids.len() < 2 {
        let next = tokio::time::timeout(Duration::from_secs(10), stream_form.next())
            .await
            .map_err(|_| "the stream did not deliver within 10 s")?;
        match next {
            Some(delivered) => ids.push(delivered?.record.id),
            None => return Err("a subscription stream never ends".into()),
        }
    }
    assert_eq!(ids, vec![first.id, second.id]);
    Ok(())
}

/// A follower of a narrow query moves its cursor past the events it does
/// not match, so it does not examine them again.
pub async fn followers_move_past_events_they_do_not_match<S>(store: &S) -> CaseResult
where
    S: LocalEventStore + LocalFollow,
{
    let mut rng = rng(61);
    let others = (0..5).map(|_| event(&mut rng, "B", &[], b"")).collect();
    store.append(AppendRequest::new(stream("s"), others)).await?;
    let narrow = Query::from(factos::QueryItem::types([crate::fixtures::ty("A")]));
    let newest = store.read(&Query::all(), ReadOptions::backwards().limit(1)).await?;
    let newest = newest.first().map(|e| e.position);
    // A store may hold new events back for a while (see above). It may
    // also leave non-matching events out before they reach the follower
    // (a server-side filter): then they are not counted as examined, but
    // the cursor still moves past them.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut batch = store.read_after(&narrow, None, 100).await?;
    while batch.end.map(|e| e.position()) != newest && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        batch = store.read_after(&narrow, None, 100).await?;
    }
    assert!(batch.events.is_empty());
    assert!(batch.examined <= 5, "only five events were there to examine");
    let end = batch.end.ok_or("the cursor must move past the five events")?;
    assert_eq!(Some(end.position()), newest);
    let again = store.read_after(&narrow, Some(end), 100).await?;
    assert_eq!(again, factos::FollowBatch::default(), "nothing new to examine");
    Ok(())
}

/// Rounds of [`followers_deliver_streams_in_order_and_decisions_after_what_they_read`].
const HELD_ROUNDS: u64 = 16;

/// With transactions held open at random (a decision holding a context
/// while writers of matching events wait for it, a second writer of the
/// same stream, a decision waiting to read what a writer commits), a
/// follower of the whole log gets each stream in revision order and every
/// decision's events after every event the decision read.
///
/// Delivery order need not be position order (PostgreSQL delivers in
/// commit-horizon order), but it must never contradict a stream's
/// revisions or what a decision saw.
pub async fn followers_deliver_streams_in_order_and_decisions_after_what_they_read<S>(store: &S) -> CaseResult
where
    S: LocalEventStore + LocalFollow,
{
    let mut rng = rng(62);
    // Each accepted decision: the ids it read, and its own event's id.
    let mut decided: Vec<(Vec<EventId>, EventId)> = Vec::new();
    for round in 0..HELD_ROUNDS {
        let held_tag = format!("held:{round}");
        // A decision holds the context of `held_tag`; W appends a matching
        // event to stream `order-N` and waits for it where the store makes
        // writers wait; H appends to the same stream meanwhile.
        let holding = hold(store, query([item(&[], &[&held_tag])])).await?;
        let w = event(&mut rng, "W", &[&held_tag], b"w");
        let h = event(&mut rng, "H", &[&format!("other:{round}")], b"h");
        let (h_delay, release) = (rng.random_range(0..20), rng.random_range(10..40));
        let order = stream(&format!("order-{round}"));
        let (w_done, h_done, ()) = futures::join!(
            store.append(AppendRequest::new(order.clone(), vec![w])),
            async {
                tokio::time::sleep(Duration::from_millis(h_delay)).await;
                store.append(AppendRequest::new(order.clone(), vec![h])).await
            },
            release_after(store, holding, release),
        );
        w_done?;
        h_done?;

        // A decision D waits behind one holding part of its context, while
        // writer W2 commits an event of the other part; D reads it, then
        // appends.
        let (a, y) = (format!("a:{round}"), format!("y:{round}"));
        let holding = hold(store, query([item(&[], &[&a])])).await?;
        let context = query([item(&[], &[&a]), item(&[], &[&y])]);
        let w2 = event(&mut rng, "W2", &[&y], b"w2");
        let (w2_delay, release) = (rng.random_range(0..20), rng.random_range(10..40));
        let mine = event(&mut rng, "D", &[&format!("z:{round}")], b"d");
        let mine_id = mine.id;
        let decide = async {
            let (transaction, read) = match store.begin_decision(&DecisionScope::Query(context.clone())).await {
                Ok(begun) => begun,
                Err(factos::StoreError::UnsupportedCondition(_)) => return Ok(None),
                Err(other) => return Err(other),
            };
            let seen = read.last().map(|e| e.position);
            let request = AppendRequest::new(stream(&format!("decided-{round}")), vec![mine])
                .condition(factos::AppendCondition::new(context.clone(), seen));
            match store.commit_decision(transaction, request).await {
                Ok(_) => Ok(Some(read.iter().map(|e| e.id).collect::<Vec<_>>())),
                Err(conflict) if conflict.is_conflict() => Ok(None),
                Err(other) => Err(other),
            }
        };
        let (decision, w2_done, ()) = futures::join!(
            decide,
            async {
                tokio::time::sleep(Duration::from_millis(w2_delay)).await;
                store
                    .append(AppendRequest::new(stream(&format!("w2-{round}")), vec![w2]))
                    .await
            },
            release_after(store, holding, release),
        );
        w2_done?;
        if let Some(read) = decision? {
            decided.push((read, mine_id));
        }
    }

    let delivered = Subscription::new(store, Query::all(), None).catch_up().await?;
    let expected = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(delivered.len(), expected.len(), "every event is delivered once");
    let mut heads: BTreeMap<&str, u64> = BTreeMap::new();
    for d in &delivered {
        let last = heads.insert(d.record.stream.as_str(), d.record.revision.value());
        assert!(
            last.is_none_or(|r| r < d.record.revision.value()),
            "stream {} delivered revision {} after revision {last:?}",
            d.record.stream,
            d.record.revision.value()
        );
    }
    let index: BTreeMap<EventId, usize> = delivered.iter().enumerate().map(|(i, d)| (d.record.id, i)).collect();
    for (read, own) in &decided {
        let own_at = index.get(own).ok_or("a decision's event was not delivered")?;
        for id in read {
            let read_at = index.get(id).ok_or("an event a decision read was not delivered")?;
            assert!(
                read_at < own_at,
                "a decision's event was delivered (at {own_at}) before an event it read (at {read_at})"
            );
        }
    }
    Ok(())
}

/// Begins a decision on `context` and keeps it open; `None` on a store
/// that refuses query decisions (then nothing is held).
async fn hold<S: LocalEventStore>(store: &S, context: Query) -> Result<Option<S::Transaction>, factos::StoreError> {
    match store.begin_decision(&DecisionScope::Query(context)).await {
        Ok((transaction, _)) => Ok(Some(transaction)),
        Err(factos::StoreError::UnsupportedCondition(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Abandons a held decision after `millis` milliseconds.
async fn release_after<S: LocalEventStore>(store: &S, held: Option<S::Transaction>, millis: u64) {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    if let Some(transaction) = held {
        store.abandon_decision(transaction).await;
    }
}
