//! Query limits: a query within the default [`factos::QueryLimits`] works on
//! every backend (no SQL statement limit, lock table or parameter count is
//! reached), and one over them is refused alike everywhere, naming the
//! limit, before anything is read or written.

use std::collections::BTreeSet;

use factos::{
    AppendCondition, AppendRequest, DecisionScope, EventId, LocalEventStore, Query, QueryItem, QueryLimit, QueryLimits,
    ReadOptions, StoreError,
};

use crate::Capabilities;
use crate::fixtures::{CaseResult, event, item, rng, stream, tag, ty};

/// A query with exactly the default limits' items, types per item and tags
/// per item: most items match nothing, a few match the log in each of the
/// ways an item can (tags only, types and tags, types only, 100 tags, 100
/// types). Reads, decisions and conditions agree with
/// [`Query::matches`].
pub async fn queries_at_the_limits_work_alike_everywhere<S: LocalEventStore>(
    store: &S,
    caps: Capabilities,
) -> CaseResult {
    let limits = QueryLimits::default();
    let mut rng = rng(80);
    let many_tags: Vec<String> = (0..limits.max_tags_per_item).map(|i| format!("wide:{i}")).collect();
    let many_tag_refs: Vec<&str> = many_tags.iter().map(String::as_str).collect();
    let many_types: Vec<String> = (0..limits.max_types_per_item).map(|i| format!("Kind{i}")).collect();
    let many_type_refs: Vec<&str> = many_types.iter().map(String::as_str).collect();
    let rows: Vec<(&str, Vec<&str>)> = vec![
        ("A", vec!["x"]),
        ("A", vec!["x", "y"]),
        ("B", vec!["y"]),
        ("C", vec![]),
        ("Kind42", vec!["q"]),
        ("D", many_tag_refs.clone()),
        ("D", vec!["wide:1"]),
        ("E", vec!["filler:7"]),
    ];
    for (i, (event_type, tags)) in rows.iter().enumerate() {
        let new = event(&mut rng, event_type, tags, b"{}");
        store
            .append(AppendRequest::new(stream(&format!("limits-{i}")), vec![new]))
            .await?;
    }

    let mut items = vec![
        item(&[], &["y"]),
        item(&["A"], &["x", "y"]),
        item(&["C"], &[]),
        item(&many_type_refs, &[]),
        item(&[], &many_tag_refs),
        // Matches no event: E carries filler:7 but not with type F.
        item(&["F"], &["filler:7"]),
    ];
    let mut filler = 0;
    while items.len() < limits.max_items {
        items.push(item(&[], &[&format!("filler:{}", 1_000 + filler), "y"]));
        filler += 1;
    }
    let large = Query::new(items);
    limits.check(&large)?;

    let everything = store.read(&Query::all(), ReadOptions::forwards()).await?;
    let expected: Vec<EventId> = everything
        .iter()
        .filter(|e| large.matches(&e.event_type, &e.tags))
        .map(|e| e.id)
        .collect();
    assert_eq!(expected.len(), 5, "the fixture: rows 1, 2, 3, 4 and 5 match");
    let read: Vec<EventId> = store
        .read(&large, ReadOptions::forwards())
        .await?
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(read, expected, "a read of a query at the limits");
    let newest: Vec<EventId> = store
        .read(&large, ReadOptions::backwards().limit(2))
        .await?
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(newest, expected.iter().rev().take(2).copied().collect::<Vec<_>>());

    if !caps.query_conditions {
        // Decisions and conditions on a query are refused there (checked
        // by the cases that need them).
        return Ok(());
    }
    let (decision, context) = store.begin_decision(&DecisionScope::Query(large.clone())).await?;
    store.abandon_decision(decision).await;
    assert_eq!(context.iter().map(|e| e.id).collect::<Vec<_>>(), expected);

    // A condition over the same query: passes after the last match, fails
    // once a matching event follows.
    let last = everything.last().map(|e| e.position);
    let unrelated = event(&mut rng, "G", &["other"], b"{}");
    let condition = AppendCondition::new(large.clone(), last);
    store
        .append(AppendRequest::new(stream("limits-ok"), vec![unrelated]).condition(condition.clone()))
        .await?;
    let matching = event(&mut rng, "Kind99", &[], b"{}");
    store
        .append(AppendRequest::new(stream("limits-match"), vec![matching]))
        .await?;
    let late = event(&mut rng, "G", &["other"], b"{}");
    match store
        .append(AppendRequest::new(stream("limits-late"), vec![late]).condition(condition))
        .await
    {
        Err(StoreError::ConditionFailed(_)) => Ok(()),
        other => panic!("a condition of a query at the limits must catch a later match, got {other:?}"),
    }
}

/// A query over each limit is refused with
/// [`StoreError::QueryTooLarge`] naming it, by reads, decisions and
/// conditional appends alike, and nothing is written: the limits are
/// checked first, so a backend without query conditions refuses the same
/// requests the same way.
pub async fn queries_over_the_limits_are_refused_naming_the_limit<S: LocalEventStore>(
    store: &S,
    _caps: Capabilities,
) -> CaseResult {
    let limits = QueryLimits::default();
    let mut rng = rng(81);
    let first = event(&mut rng, "A", &["x"], b"{}");
    store.append(AppendRequest::new(stream("over"), vec![first])).await?;

    let items = |n: usize| (0..n).map(|i| QueryItem::tags([tag(&format!("t:{i}"))]));
    let long_tag = |i: usize| tag(&format!("{i:08}:{}", "l".repeat(240)));
    let over = [
        (QueryLimit::Items, Query::new(items(limits.max_items + 1))),
        (
            QueryLimit::TypesPerItem,
            Query::from(QueryItem::types(
                (0..=limits.max_types_per_item).map(|i| ty(&format!("T{i}"))),
            )),
        ),
        (
            QueryLimit::TagsPerItem,
            Query::from(QueryItem::tags(
                (0..=limits.max_tags_per_item).map(|i| tag(&format!("g:{i}"))),
            )),
        ),
        (
            QueryLimit::Bytes,
            Query::new((0..limits.max_bytes / 248 + 1).map(|i| QueryItem::tags([long_tag(i)]))),
        ),
    ];
    for (limit, query) in over {
        let refused = |outcome: Result<(), StoreError>, what: &str| match outcome {
            Err(StoreError::QueryTooLarge(too_large)) => {
                assert_eq!(too_large.limit, limit, "{what} must name the limit exceeded");
                assert!(too_large.found > too_large.allowed);
            }
            other => panic!("{what} of a query over {limit} must be refused as too large, got {other:?}"),
        };
        refused(store.read(&query, ReadOptions::forwards()).await.map(drop), "a read");
        let decision = store.begin_decision(&DecisionScope::Query(query.clone())).await;
        refused(
            match decision {
                Ok((transaction, _)) => {
                    store.abandon_decision(transaction).await;
                    Ok(())
                }
                Err(error) => Err(error),
            },
            "a decision",
        );
        let condition = AppendCondition::new(query, None);
        let append = AppendRequest::new(stream("over"), vec![event(&mut rng, "A", &["x"], b"{}")]).condition(condition);
        refused(store.append(append).await.map(drop), "a conditional append");
    }
    let left: BTreeSet<EventId> = store
        .read(&Query::all(), ReadOptions::forwards())
        .await?
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left.len(), 1, "a refused append writes nothing");
    Ok(())
}
