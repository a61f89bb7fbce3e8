//! The six query rules, checked against what the store returns.

use factos::{AppendRequest, EventId, LocalEventStore, Query, ReadOptions};

use crate::fixtures::{CaseResult, event, item, query, rng, stream};

/// Appends the fixture log and returns the ids of its events, in order:
///
/// | # | type | tags    |
/// |---|------|---------|
/// | 0 | A    | x       |
/// | 1 | A    | x, y    |
/// | 2 | B    | y       |
/// | 3 | C    | —       |
/// | 4 | B    | x, y, z |
async fn fixture<S: LocalEventStore>(store: &S) -> Result<Vec<EventId>, factos::StoreError> {
    let mut rng = rng(7);
    let rows: [(&str, &[&str]); 5] = [
        ("A", &["x"]),
        ("A", &["x", "y"]),
        ("B", &["y"]),
        ("C", &[]),
        ("B", &["x", "y", "z"]),
    ];
    let mut ids = Vec::new();
    for (i, (event_type, tags)) in rows.into_iter().enumerate() {
        let new = event(&mut rng, event_type, tags, b"{}");
        ids.push(new.id);
        store
            .append(AppendRequest::new(stream(&format!("fixture-{i}")), vec![new]))
            .await?;
    }
    Ok(ids)
}

async fn check<S: LocalEventStore>(store: &S, query: Query, expected: &[usize]) -> CaseResult {
    let ids = fixture(store).await?;
    check_on(store, &ids, query, expected).await
}

async fn check_on<S: LocalEventStore>(store: &S, ids: &[EventId], query: Query, expected: &[usize]) -> CaseResult {
    let read: Vec<EventId> = store
        .read(&query, ReadOptions::forwards())
        .await?
        .iter()
        .map(|e| e.id)
        .collect();
    let expected: Vec<EventId> = expected.iter().map(|&i| ids[i]).collect();
    assert_eq!(
        read, expected,
        "query {query:?} returned the wrong events (fixture rows {expected:?})"
    );
    Ok(())
}

/// Rule 1: the empty query matches every event.
pub async fn query_empty_matches_every_event<S: LocalEventStore>(store: &S) -> CaseResult {
    check(store, Query::all(), &[0, 1, 2, 3, 4]).await
}

/// Rule 2: query items are OR-combined.
pub async fn query_items_are_or_combined<S: LocalEventStore>(store: &S) -> CaseResult {
    check(store, query([item(&["C"], &[]), item(&[], &["z"])]), &[3, 4]).await
}

/// Rule 3: event types inside an item are OR-combined.
pub async fn query_types_in_item_are_or_combined<S: LocalEventStore>(store: &S) -> CaseResult {
    check(store, query([item(&["A", "C"], &[])]), &[0, 1, 3]).await
}

/// Rule 4: tags inside an item are AND-combined.
pub async fn query_tags_in_item_are_and_combined<S: LocalEventStore>(store: &S) -> CaseResult {
    check(store, query([item(&[], &["x", "y"])]), &[1, 4]).await
}

/// Rule 5: an item without types matches any type; with types and tags both
/// constrain.
pub async fn query_item_without_types_matches_any_type<S: LocalEventStore>(store: &S) -> CaseResult {
    let ids = fixture(store).await?;
    check_on(store, &ids, query([item(&[], &["y"])]), &[1, 2, 4]).await?;
    check_on(store, &ids, query([item(&["A"], &["y"])]), &[1]).await
}

/// Rule 6: an item without tags matches any tags (including none).
pub async fn query_item_without_tags_matches_any_tags<S: LocalEventStore>(store: &S) -> CaseResult {
    let ids = fixture(store).await?;
    check_on(store, &ids, query([item(&["B"], &[])]), &[2, 4]).await?;
    check_on(store, &ids, query([item(&[], &[])]), &[0, 1, 2, 3, 4]).await
}
