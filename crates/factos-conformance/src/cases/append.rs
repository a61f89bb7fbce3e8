//! Appends: positions, append conditions, expected revisions, atomicity and
//! idempotent re-sends.

use factos::{
    AppendCondition, AppendRequest, ExpectedRevision, InvalidAppend, LocalEventStore, Query, ReadOptions, StoreError,
    StreamRevision,
};

use crate::capabilities::{Capabilities, assert_condition_refused};
use crate::fixtures::{CaseResult, event, item, query, rng, stream};

async fn count<S: LocalEventStore>(store: &S) -> Result<usize, StoreError> {
    Ok(store.read(&Query::all(), ReadOptions::forwards()).await?.len())
}

/// Positions are strictly increasing, returned by the append, and equal to
/// what a later read returns; revisions count from 0 per stream.
pub async fn positions_strictly_increase_and_are_returned_on_append<S: LocalEventStore>(store: &S) -> CaseResult {
    let mut rng = rng(1);
    let mut committed = Vec::new();
    for (name, size) in [("a", 1), ("b", 3), ("a", 2)] {
        let events = (0..size).map(|_| event(&mut rng, "E", &[], b"")).collect();
        let result = store.append(AppendRequest::new(stream(name), events)).await?;
        assert_eq!(result.records.len(), size, "append must return one record per event");
        assert_eq!(result.revision, result.records[size - 1].revision);
        committed.extend(result.records);
    }
    assert!(
        committed.windows(2).all(|w| w[0].position < w[1].position),
        "positions must strictly increase: {:?}",
        committed.iter().map(|r| r.position).collect::<Vec<_>>()
    );
    let revisions = |name: &str| -> Vec<u64> {
        committed
            .iter()
            .filter(|r| r.stream.as_str() == name)
            .map(|r| r.revision.value())
            .collect()
    };
    assert_eq!(revisions("a"), vec![0, 1, 2]);
    assert_eq!(revisions("b"), vec![0, 1, 2]);
    let read = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(read, committed, "a read must return exactly the committed records");
    Ok(())
}

/// `FailIfEventsMatch(query, after)` rejects the append when a matching event
/// was committed after `after`, names it, and writes nothing.
pub async fn condition_fails_when_matching_event_arrived_after<S: LocalEventStore>(
    store: &S,
    caps: Capabilities,
) -> CaseResult {
    let mut rng = rng(2);
    let boundary = query([item(&["Sold"], &["concert:1"])]);
    let first = store
        .append(AppendRequest::new(
            stream("s"),
            vec![event(&mut rng, "Sold", &["concert:1"], b"")],
        ))
        .await?;
    let seen = first.records[0].position;
    let racer = store
        .append(AppendRequest::new(
            stream("t"),
            vec![event(&mut rng, "Sold", &["concert:1", "buyer:9"], b"")],
        ))
        .await?;
    let late = AppendRequest::new(
        stream("s"),
        vec![
            event(&mut rng, "Sold", &["concert:1"], b""),
            event(&mut rng, "Sold", &["concert:1"], b""),
        ],
    )
    .condition(AppendCondition::new(boundary.clone(), Some(seen)));
    if !caps.query_conditions {
        return Ok(assert_condition_refused(store, late).await?);
    }
    match store.append(late).await {
        Err(StoreError::ConditionFailed(failed)) => {
            assert_eq!(failed.condition, AppendCondition::new(boundary, Some(seen)));
            assert_eq!(failed.conflicting, racer.records[0].position);
        }
        other => panic!("expected ConditionFailed, got {other:?}"),
    }
    assert_eq!(count(store).await?, 2, "a failed conditional append must write nothing");
    Ok(())
}

/// Events that do not match the query do not fail the condition.
pub async fn condition_passes_when_only_non_matching_events_arrived<S: LocalEventStore>(
    store: &S,
    caps: Capabilities,
) -> CaseResult {
    let mut rng = rng(3);
    let boundary = query([item(&["Sold"], &["concert:1"])]);
    let first = store
        .append(AppendRequest::new(
            stream("s"),
            vec![event(&mut rng, "Sold", &["concert:1"], b"")],
        ))
        .await?;
    let seen = first.records[0].position;
    for (event_type, tags) in [
        ("Sold", &["concert:2"][..]),
        ("Refunded", &["concert:1"][..]),
        ("Sold", &[][..]),
    ] {
        store
            .append(AppendRequest::new(
                stream("other"),
                vec![event(&mut rng, event_type, tags, b"")],
            ))
            .await?;
    }
    let next = AppendRequest::new(stream("s"), vec![event(&mut rng, "Sold", &["concert:1"], b"")])
        .condition(AppendCondition::new(boundary, Some(seen)));
    if !caps.query_conditions {
        return Ok(assert_condition_refused(store, next).await?);
    }
    let committed = store.append(next).await?;
    assert_eq!(committed.records.len(), 1);
    assert_eq!(count(store).await?, 5);
    Ok(())
}

/// `after: None` fails on any matching event, whatever its position, and
/// passes when none exists.
pub async fn condition_without_position_fails_on_any_match<S: LocalEventStore>(
    store: &S,
    caps: Capabilities,
) -> CaseResult {
    let mut rng = rng(4);
    let boundary = query([item(&[], &["username:ada"])]);
    let claim = |rng: &mut _| {
        AppendRequest::new(stream("users"), vec![event(rng, "Reserved", &["username:ada"], b"")])
            .condition(AppendCondition::new(boundary.clone(), None))
    };
    store
        .append(AppendRequest::new(
            stream("users"),
            vec![event(&mut rng, "Reserved", &["username:bob"], b"")],
        ))
        .await?;
    if !caps.query_conditions {
        return Ok(assert_condition_refused(store, claim(&mut rng)).await?);
    }
    store.append(claim(&mut rng)).await?;
    match store.append(claim(&mut rng)).await {
        Err(StoreError::ConditionFailed(failed)) => assert_eq!(failed.condition.after, None),
        other => panic!("expected ConditionFailed, got {other:?}"),
    }
    assert_eq!(count(store).await?, 2);
    Ok(())
}

async fn expect_mismatch<S: LocalEventStore>(store: &S, expected: ExpectedRevision, actual: Option<u64>) -> CaseResult {
    let mut rng = rng(99);
    let before = count(store).await?;
    let request = AppendRequest::new(
        stream("s"),
        vec![event(&mut rng, "E", &[], b""), event(&mut rng, "E", &[], b"")],
    )
    .expect(expected);
    match store.append(request).await {
        Err(StoreError::RevisionMismatch(mismatch)) => {
            assert_eq!(mismatch.expected, expected);
            assert_eq!(mismatch.actual, actual.map(StreamRevision::new));
            assert_eq!(mismatch.stream, stream("s"));
        }
        other => panic!("expected RevisionMismatch for {expected}, got {other:?}"),
    }
    assert_eq!(count(store).await?, before, "a revision mismatch must write nothing");
    Ok(())
}

async fn append_to_s<S: LocalEventStore>(
    store: &S,
    expected: ExpectedRevision,
    seed: u64,
) -> Result<StreamRevision, StoreError> {
    let mut rng = rng(seed);
    let committed = store
        .append(AppendRequest::new(stream("s"), vec![event(&mut rng, "E", &[], b"")]).expect(expected))
        .await?;
    Ok(committed.revision)
}

/// `ExpectedRevision::Any` appends whatever the stream's state.
pub async fn expected_revision_any<S: LocalEventStore>(store: &S) -> CaseResult {
    assert_eq!(
        append_to_s(store, ExpectedRevision::Any, 1).await?,
        StreamRevision::new(0)
    );
    assert_eq!(
        append_to_s(store, ExpectedRevision::Any, 2).await?,
        StreamRevision::new(1)
    );
    Ok(())
}

/// `ExpectedRevision::NoStream` appends only to a stream without events.
pub async fn expected_revision_no_stream<S: LocalEventStore>(store: &S) -> CaseResult {
    assert_eq!(
        append_to_s(store, ExpectedRevision::NoStream, 1).await?,
        StreamRevision::new(0)
    );
    expect_mismatch(store, ExpectedRevision::NoStream, Some(0)).await
}

/// `ExpectedRevision::StreamExists` appends only to a stream with events.
pub async fn expected_revision_stream_exists<S: LocalEventStore>(store: &S) -> CaseResult {
    expect_mismatch(store, ExpectedRevision::StreamExists, None).await?;
    append_to_s(store, ExpectedRevision::Any, 1).await?;
    assert_eq!(
        append_to_s(store, ExpectedRevision::StreamExists, 2).await?,
        StreamRevision::new(1)
    );
    Ok(())
}

/// `ExpectedRevision::Exact` appends only when the stream's last revision is
/// the expected one.
pub async fn expected_revision_exact<S: LocalEventStore>(store: &S) -> CaseResult {
    expect_mismatch(store, ExpectedRevision::Exact(StreamRevision::new(0)), None).await?;
    append_to_s(store, ExpectedRevision::NoStream, 1).await?;
    append_to_s(store, ExpectedRevision::Exact(StreamRevision::new(0)), 2).await?;
    expect_mismatch(store, ExpectedRevision::Exact(StreamRevision::new(0)), Some(1)).await?;
    expect_mismatch(store, ExpectedRevision::Exact(StreamRevision::new(2)), Some(1)).await?;
    assert_eq!(
        append_to_s(store, ExpectedRevision::Exact(StreamRevision::new(1)), 3).await?,
        StreamRevision::new(2)
    );
    Ok(())
}

/// A batch is atomic: when any check or any event fails, no event of the
/// batch is written.
pub async fn failed_batch_writes_nothing<S: LocalEventStore>(store: &S, caps: Capabilities) -> CaseResult {
    let mut rng = rng(5);
    let taken = event(&mut rng, "E", &["k"], b"taken");
    store
        .append(AppendRequest::new(stream("s"), vec![taken.clone()]))
        .await?;

    // Without store-wide unique ids, a backend only recognises an id that
    // leads a re-sent batch, so the taken id goes first there.
    let with_taken_id = if caps.unique_event_ids {
        vec![
            event(&mut rng, "E", &["k"], b"1"),
            event(&mut rng, "E", &["k"], b"2"),
            taken.clone().with_version(2),
        ]
    } else {
        vec![taken.clone().with_version(2), event(&mut rng, "E", &["k"], b"1")]
    };
    match store.append(AppendRequest::new(stream("s"), with_taken_id)).await {
        Err(StoreError::DuplicateEventId(duplicate)) => assert_eq!(duplicate.id, taken.id),
        other => panic!("expected DuplicateEventId, got {other:?}"),
    }
    let repeated = event(&mut rng, "E", &[], b"");
    match store
        .append(AppendRequest::new(
            stream("s"),
            vec![repeated.clone(), repeated.clone()],
        ))
        .await
    {
        Err(StoreError::InvalidAppend(InvalidAppend::RepeatedId(id))) => assert_eq!(id, repeated.id),
        other => panic!("expected InvalidAppend::RepeatedId, got {other:?}"),
    }
    match store.append(AppendRequest::new(stream("s"), Vec::new())).await {
        Err(StoreError::InvalidAppend(InvalidAppend::EmptyBatch)) => {}
        other => panic!("expected InvalidAppend::EmptyBatch, got {other:?}"),
    }
    let failing = AppendRequest::new(
        stream("s"),
        vec![event(&mut rng, "E", &["k"], b"3"), event(&mut rng, "E", &["k"], b"4")],
    )
    .condition(AppendCondition::new(query([item(&[], &["k"])]), None));
    if caps.query_conditions {
        assert!(matches!(
            store.append(failing).await,
            Err(StoreError::ConditionFailed(_))
        ));
    } else {
        assert_condition_refused(store, failing).await?;
    }
    let stale = AppendRequest::new(
        stream("s"),
        vec![event(&mut rng, "E", &["k"], b"5"), event(&mut rng, "E", &["k"], b"6")],
    )
    .expect(ExpectedRevision::NoStream);
    assert!(matches!(
        store.append(stale).await,
        Err(StoreError::RevisionMismatch(_))
    ));

    let all = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(all.len(), 1, "only the first event may exist: {all:?}");
    assert_eq!(all[0].id, taken.id);
    Ok(())
}

/// An id that is taken by a different event is rejected with a clear error
/// naming the id and where it is used.
pub async fn duplicate_event_id_is_rejected<S: LocalEventStore>(store: &S, caps: Capabilities) -> CaseResult {
    let mut rng = rng(6);
    let original = event(&mut rng, "E", &[], b"original");
    let committed = store
        .append(AppendRequest::new(stream("s"), vec![original.clone()]))
        .await?;
    let mut impostor = original.clone();
    impostor.data = b"different".to_vec();
    match store.append(AppendRequest::new(stream("s"), vec![impostor])).await {
        Err(StoreError::DuplicateEventId(duplicate)) => {
            assert_eq!(duplicate.id, original.id);
            assert_eq!(duplicate.existing, committed.records[0].position);
            assert!(duplicate.to_string().contains(&original.id.to_string()));
        }
        other => panic!("expected DuplicateEventId, got {other:?}"),
    }
    // The same event sent to another stream is a different request too
    // (where ids are unique store-wide; elsewhere it is a new event).
    if caps.unique_event_ids {
        match store.append(AppendRequest::new(stream("t"), vec![original])).await {
            Err(StoreError::DuplicateEventId(_)) => {}
            other => panic!("expected DuplicateEventId, got {other:?}"),
        }
    }
    assert_eq!(count(store).await?, 1);
    Ok(())
}

/// Re-sending an identical batch after a lost acknowledgement returns the
/// originally committed records and writes nothing new, even though its
/// condition no longer holds; a re-send with another condition is a
/// duplicate.
pub async fn identical_resend_returns_original_records<S: LocalEventStore>(
    store: &S,
    caps: Capabilities,
) -> CaseResult {
    let mut rng = rng(7);
    let boundary = query([item(&["Sold"], &["concert:1"])]);
    let request = AppendRequest::new(
        stream("s"),
        vec![
            event(&mut rng, "Sold", &["concert:1"], b"1"),
            event(&mut rng, "Sold", &["concert:1"], b"2"),
        ],
    )
    .expect(ExpectedRevision::NoStream);
    let request = if caps.query_conditions {
        request.condition(AppendCondition::new(boundary.clone(), None))
    } else {
        request
    };
    let first = store.append(request.clone()).await?;
    store
        .append(AppendRequest::new(
            stream("u"),
            vec![event(&mut rng, "Other", &[], b"")],
        ))
        .await?;
    let again = store.append(request.clone()).await?;
    assert_eq!(again, first, "an identical re-send must return the original records");
    assert_eq!(count(store).await?, 3);

    let changed = if caps.query_conditions {
        request.condition(AppendCondition::new(boundary, first.records.last().map(|r| r.position)))
    } else {
        request.expect(ExpectedRevision::Any)
    };
    match store.append(changed).await {
        Err(StoreError::DuplicateEventId(_)) => {}
        other => panic!("expected DuplicateEventId for a re-send with another condition, got {other:?}"),
    }
    assert_eq!(count(store).await?, 3);
    Ok(())
}

/// Metadata that some backend could not store (a NUL in a value, an empty
/// key) is refused by every backend with the same typed error, before
/// anything is written; metadata every backend can store round-trips.
pub async fn invalid_metadata_is_refused_alike_everywhere<S: LocalEventStore>(store: &S) -> CaseResult {
    let mut rng = rng(42);
    for (key, value) in [("trace", "a\0b"), ("", "v"), ("line\nbreak", "v")] {
        let bad = event(&mut rng, "E", &["k"], b"")
            .with_metadata(factos::Metadata::new().with("ok", "fine").with(key, value));
        let id = bad.id;
        let batch = vec![event(&mut rng, "E", &["k"], b""), bad];
        match store.append(AppendRequest::new(stream("s"), batch)).await {
            Err(StoreError::InvalidAppend(InvalidAppend::InvalidMetadata { id: refused, source })) => {
                assert_eq!(refused, id);
                assert_eq!(source.key, key);
            }
            other => panic!("metadata {key:?} = {value:?} must be refused as InvalidMetadata, got {other:?}"),
        }
    }
    assert_eq!(count(store).await?, 0, "a refused batch writes nothing");
    let odd = factos::Metadata::new()
        .with("multi", "line one\nline two\ttab")
        .with("ünïcode", "✓ \u{1}");
    let kept = event(&mut rng, "E", &[], b"").with_metadata(odd.clone());
    let committed = store.append(AppendRequest::new(stream("s"), vec![kept])).await?;
    let read = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(read, committed.records);
    assert_eq!(read[0].metadata, odd);
    Ok(())
}
