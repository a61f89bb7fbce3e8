//! SQL predicates on query items, for the SQL backends. Not stamped by
//! [`crate::conformance_tests!`]: the SQL is each backend's own, so each SQL
//! backend calls [`predicates_narrow_reads_and_conditions`] with its
//! dialect's expressions.

use factos::{
    AppendCondition, AppendRequest, LocalEventStore, Predicate, PredicateValue, Query, QueryItem, ReadOptions,
    StoreError,
};

use crate::fixtures::{CaseResult, event, rng, stream, tag, ty};

/// The backend's SQL for the predicates the case uses, over events whose
/// payload is a JSON object like `{"day": 2, "note": "…"}`.
#[derive(Debug, Clone, Copy)]
pub struct PredicateSql {
    /// True when the payload's integer `day` equals `$1`.
    pub day_equals: &'static str,
    /// True when the payload's text `note` equals `$1`.
    pub note_equals: &'static str,
}

/// A predicate narrows reads and append conditions exactly like a tag would,
/// with its values bound as parameters; a predicate-only item works too.
pub async fn predicates_narrow_reads_and_conditions<S: LocalEventStore>(store: &S, sql: PredicateSql) -> CaseResult {
    let mut rng = rng(40);
    let day = |d: i64| Predicate::new(sql.day_equals, [PredicateValue::Integer(d)]);
    let spent_on = |d: i64| {
        Query::from(
            QueryItem::types([ty("Spent")])
                .with_tags([tag("account:1")])
                .with_predicate(day(d)),
        )
    };
    let sneaky = "'; DROP TABLE events; --";
    let mut ids = Vec::new();
    for (d, note) in [(1, "a"), (2, "b"), (2, sneaky), (3, "c")] {
        let payload = format!(r#"{{"day": {d}, "note": {}}}"#, serde_json_string(note));
        let new = event(&mut rng, "Spent", &["account:1"], payload.as_bytes());
        ids.push(new.id);
        store.append(AppendRequest::new(stream("account-1"), vec![new])).await?;
    }
    store
        .append(AppendRequest::new(
            stream("account-2"),
            vec![event(&mut rng, "Spent", &["account:2"], br#"{"day": 2, "note": "x"}"#)],
        ))
        .await?;

    let day_two = store.read(&spent_on(2), ReadOptions::forwards()).await?;
    assert_eq!(
        day_two.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[1], ids[2]],
        "day 2 of account 1"
    );
    let by_note = Query::from(
        QueryItem::new().with_predicate(Predicate::new(sql.note_equals, [PredicateValue::Text(sneaky.into())])),
    );
    let noted = store.read(&by_note, ReadOptions::forwards()).await?;
    assert_eq!(
        noted.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[2]],
        "a text parameter is data, not SQL"
    );

    let after = day_two.last().map(|e| e.position);
    let later = || {
        event(
            &mut rng_for_later(),
            "Spent",
            &["account:1"],
            br#"{"day": 3, "note": "later"}"#,
        )
    };
    store
        .append(
            AppendRequest::new(stream("account-1"), vec![later()]).condition(AppendCondition::new(spent_on(2), after)),
        )
        .await?;
    let late = event(&mut rng, "Spent", &["account:1"], br#"{"day": 2, "note": "late"}"#);
    let late_position = store
        .append(AppendRequest::new(stream("account-1"), vec![late]))
        .await?
        .records[0]
        .position;
    let stale = AppendRequest::new(
        stream("account-1"),
        vec![event(&mut rng, "Spent", &["account:1"], br#"{"day": 2}"#)],
    )
    .condition(AppendCondition::new(spent_on(2), after));
    match store.append(stale).await {
        Err(StoreError::ConditionFailed(failed)) => assert_eq!(failed.conflicting, late_position),
        other => panic!("a matching event arrived after the read, expected ConditionFailed, got {other:?}"),
    }
    let none_yet = AppendRequest::new(
        stream("account-1"),
        vec![event(&mut rng, "Spent", &["account:1"], br#"{"day": 9}"#)],
    )
    .condition(AppendCondition::new(spent_on(9), None));
    store.append(none_yet).await?;
    Ok(())
}

fn rng_for_later() -> proptest::test_runner::TestRng {
    rng(41)
}

fn serde_json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|e| panic!("a string always serialises: {e}"))
}

/// A predicate that is not exactly one SQL expression (one that closes its
/// item's parenthesis to escape the type, tag and position filters, or
/// uses a parameter it does not bind) is refused with
/// [`StoreError::InvalidPredicate`] on reads and on append conditions, and
/// nothing is written; a condition it would have widened never lets an
/// append through. A trailing comment cannot swallow the closing
/// parenthesis: it is dropped.
pub async fn escaping_predicates_are_refused<S: LocalEventStore>(store: &S, sql: PredicateSql) -> CaseResult {
    let mut rng = rng(43);
    store
        .append(AppendRequest::new(
            stream("account-2"),
            vec![event(&mut rng, "Spent", &["account:2"], br#"{"day": 1, "note": "x"}"#)],
        ))
        .await?;
    let before = store.read(&Query::all(), ReadOptions::forwards()).await?;
    let escapes = [
        "1=1) OR (1=1".to_owned(),
        format!("{}) OR (1=1", sql.day_equals),
        "1=0) UNION SELECT position FROM events WHERE (1=1".to_owned(),
        "1=1); DELETE FROM events; --".to_owned(),
        format!("{} OR $2 = 1", sql.day_equals),
    ];
    for escape in escapes {
        let query = Query::from(
            QueryItem::types([ty("Spent")])
                .with_tags([tag("account:1")])
                .with_predicate(Predicate::new(escape.clone(), [PredicateValue::Integer(1)])),
        );
        match store.read(&query, ReadOptions::forwards()).await {
            Err(StoreError::InvalidPredicate(invalid)) => assert_eq!(invalid.sql, escape),
            other => panic!("read with predicate {escape:?}: expected InvalidPredicate, got {other:?}"),
        }
        let guarded = AppendRequest::new(
            stream("account-1"),
            vec![event(&mut rng, "Spent", &["account:1"], br#"{"day": 1}"#)],
        )
        .condition(AppendCondition::new(query, None));
        match store.append(guarded).await {
            Err(StoreError::InvalidPredicate(invalid)) => assert_eq!(invalid.sql, escape),
            other => panic!("append with predicate {escape:?}: expected InvalidPredicate, got {other:?}"),
        }
    }
    let after = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(after, before, "a refused predicate reads and writes nothing");

    let on_day_one = |predicate: String| {
        Query::from(
            QueryItem::types([ty("Spent")])
                .with_tags([tag("account:2")])
                .with_predicate(Predicate::new(predicate, [PredicateValue::Integer(1)])),
        )
    };
    let plain = store
        .read(&on_day_one(sql.day_equals.into()), ReadOptions::forwards())
        .await?;
    let commented = on_day_one(format!("{} -- and a comment", sql.day_equals));
    assert_eq!(plain.len(), 1);
    assert_eq!(store.read(&commented, ReadOptions::forwards()).await?, plain);
    Ok(())
}
