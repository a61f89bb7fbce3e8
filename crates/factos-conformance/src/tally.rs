//! Fixtures for read-side tests: events with random tags, and the count of
//! events per tag that a correct projection of them must hold.

use std::collections::BTreeMap;

use factos::{AppendRequest, EventId, LocalEventStore, NewEvent, Query, ReadOptions, StoreError, StreamId, Tag};
use proptest::prelude::Rng;

/// An event of type `E` with one to three random tags `t0`..`t4`.
pub fn tagged(rng: &mut impl Rng, payload: &[u8]) -> NewEvent {
    let tags = (0..rng.random_range(1..=3))
        .map(|_| Tag::new(format!("t{}", rng.random_range(0..5))).unwrap_or_else(|e| panic!("fixture tag: {e}")));
    NewEvent::new(EventId::random(), crate::fixtures::ty("E"), payload.to_vec()).with_tags(tags.collect::<Vec<_>>())
}

/// Appends `batches` batches of one to three [`tagged`] events.
///
/// # Errors
///
/// The store's error.
pub async fn append_tagged<S: LocalEventStore>(
    store: &S,
    rng: &mut impl Rng,
    batches: usize,
) -> Result<(), StoreError> {
    for _ in 0..batches {
        let events = (0..rng.random_range(1..=3)).map(|_| tagged(rng, b"{}")).collect();
        store.append(AppendRequest::new(stream(), events)).await?;
    }
    Ok(())
}

/// How many events carry each tag: what a tally projection must hold,
/// recomputed from the whole log.
///
/// # Errors
///
/// The store's error.
pub async fn tag_counts<S: LocalEventStore>(store: &S) -> Result<BTreeMap<String, i64>, StoreError> {
    let mut counts = BTreeMap::new();
    for event in store.read(&Query::all(), ReadOptions::forwards()).await? {
        for tag in &event.tags {
            *counts.entry(tag.to_string()).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// The stream the tally fixtures append to.
pub fn stream() -> StreamId {
    crate::fixtures::stream("s")
}
