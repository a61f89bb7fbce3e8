//! The generic dispatch flows over the store: decode errors, committed
//! records, stream dispatch, and a capacity race.

use factos::{
    AppendRequest, Codec, Dispatcher, Error, JsonCodec, JsonCodecError, LocalEventStore, Metadata, Query, ReadOptions,
    Recorded, RetryPolicy, StreamRevision, decider,
};
use futures::future::join_all;

use crate::capabilities::{Capabilities, assert_query_conditions_refused};
use crate::fixtures::{CaseResult, event, rng};
use crate::interleave::Interleave;
use crate::tickets::{Buy, SoldOut, TicketSold, box_office, concert_query, concert_stream};

/// Sells a ticket for `buy.concert` from a box office of `capacity`: a
/// decision on the concert's context where the backend enforces query
/// conditions, on the concert's stream where it does not.
async fn sell<S: LocalEventStore, C: Codec<TicketSold>>(
    dispatcher: &Dispatcher<'_, S, C>,
    caps: Capabilities,
    capacity: u32,
    buy: &Buy,
) -> Result<Vec<Recorded<TicketSold>>, Error<SoldOut>> {
    let stream = concert_stream(buy.concert);
    if caps.query_conditions {
        dispatcher
            .dispatch_context(&box_office(capacity), buy, &concert_query(buy.concert), &stream)
            .await
    } else {
        dispatcher.dispatch_stream(&box_office(capacity), buy, &stream).await
    }
}

/// A payload the codec cannot read stops the read with a decode error that
/// names the event and keeps the codec's error as its source; a dispatch on
/// that context writes nothing.
pub async fn decode_failures_surface_as_decode_errors<S: LocalEventStore>(store: &S, caps: Capabilities) -> CaseResult {
    let mut rng = rng(20);
    let broken = store
        .append(AppendRequest::new(
            concert_stream(1),
            vec![event(&mut rng, "TicketSold", &["concert:1"], b"not json")],
        ))
        .await?;
    let dispatcher = Dispatcher::new(store, JsonCodec::<TicketSold>::new());
    match dispatcher.read_context(&box_office(10), &concert_query(1)).await {
        Err(Error::Decode(decode)) => {
            assert_eq!(decode.position, broken.records[0].position);
            assert_eq!(decode.event_type.as_str(), "TicketSold");
            assert!(
                decode.source.downcast_ref::<JsonCodecError>().is_some(),
                "the codec's error must be the source"
            );
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    let buy = Buy { concert: 1, buyer: 1 };
    let dispatched = sell(&dispatcher, caps, 10, &buy).await;
    assert!(matches!(dispatched, Err(Error::Decode(_))), "got {dispatched:?}");
    assert_eq!(store.read(&Query::all(), ReadOptions::forwards()).await?.len(), 1);
    Ok(())
}

/// `dispatch_context` returns the committed events with their positions,
/// exactly as a later read returns them, with the dispatcher's metadata.
pub async fn dispatch_returns_committed_records<S: LocalEventStore>(store: &S, caps: Capabilities) -> CaseResult {
    let dispatcher = Dispatcher::new(store, JsonCodec::<TicketSold>::new())
        .with_metadata(Metadata::new().with("correlation-id", "req-1"));
    let mut committed = Vec::new();
    for buyer in 0..2 {
        let buy = Buy { concert: 1, buyer };
        committed.extend(sell(&dispatcher, caps, 2, &buy).await.map_err(|e| e.to_string())?);
    }
    let third = sell(&dispatcher, caps, 2, &Buy { concert: 1, buyer: 2 }).await;
    assert!(matches!(third, Err(Error::Domain(SoldOut))), "got {third:?}");
    assert_eq!(committed.len(), 2);
    let stored = store.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(stored.len(), 2);
    for (record, stored) in committed.iter().zip(&stored) {
        assert_eq!(record.position, stored.position);
        assert_eq!(record.id, stored.id);
        assert_eq!(record.metadata.get("correlation-id"), Some("req-1"));
        assert_eq!(stored.metadata.get("correlation-id"), Some("req-1"));
    }
    assert_eq!(committed[1].event, TicketSold { concert: 1, buyer: 1 });
    let context = dispatcher
        .read_context(&box_office(2), &concert_query(1))
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(context.state, 2);
    assert_eq!(context.position, Some(committed[1].position));
    if !caps.query_conditions {
        assert_query_conditions_refused(store).await?;
    }
    Ok(())
}

/// `dispatch_stream` decides on one stream and appends at the revision it
/// loaded.
pub async fn dispatch_stream_appends_at_loaded_revision<S: LocalEventStore>(store: &S) -> CaseResult {
    let counter = decider(
        0u32,
        |add: &u32, total: &u32| {
            if total + add > 5 {
                Err(SoldOut)
            } else {
                Ok(vec![TicketSold {
                    concert: 9,
                    buyer: *add,
                }])
            }
        },
        |total: u32, e: &TicketSold| total + e.buyer,
    );
    let dispatcher = Dispatcher::new(store, JsonCodec::<TicketSold>::new());
    let stream = concert_stream(9);
    let first = dispatcher
        .dispatch_stream(&counter, &2, &stream)
        .await
        .map_err(|e| e.to_string())?;
    let second = dispatcher
        .dispatch_stream(&counter, &3, &stream)
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(first[0].revision, StreamRevision::new(0));
    assert_eq!(second[0].revision, StreamRevision::new(1));
    let rejected = dispatcher.dispatch_stream(&counter, &1, &stream).await;
    assert!(matches!(rejected, Err(Error::Domain(SoldOut))), "got {rejected:?}");
    let loaded = dispatcher
        .load_stream(&counter, &stream)
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!((loaded.state, loaded.revision), (5, Some(StreamRevision::new(1))));
    assert_eq!(loaded.events.len(), 2);
    Ok(())
}

/// 32 concurrent dispatches racing for a capacity of 10 accept exactly 10;
/// every other one is rejected by the domain, none by a conflict. (On the
/// concert's context, or on its stream where query conditions are not
/// enforced.)
pub async fn concurrent_dispatches_accept_exactly_capacity<S: LocalEventStore>(
    store: &S,
    caps: Capabilities,
) -> CaseResult {
    let racers = (0..32u32).map(|buyer| async move {
        let interleaved = Interleave::new(store, u64::from(buyer));
        let dispatcher = Dispatcher::new(&interleaved, JsonCodec::<TicketSold>::new());
        sell(&dispatcher, caps, 10, &Buy { concert: 1, buyer }).await
    });
    let outcomes = join_all(racers).await;
    let accepted = outcomes.iter().filter(|o| o.is_ok()).count();
    let sold_out = outcomes
        .iter()
        .filter(|o| matches!(o, Err(Error::Domain(SoldOut))))
        .count();
    let unexpected: Vec<_> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .filter(|e| !e.is_domain())
        .collect();
    assert!(
        unexpected.is_empty(),
        "dispatches failed for other reasons than the domain: {unexpected:?}"
    );
    assert_eq!((accepted, sold_out), (10, 22));
    assert_eq!(
        store.read(&concert_query(1), ReadOptions::forwards()).await?.len(),
        10,
        "the store must hold exactly 10 sales"
    );
    Ok(())
}

/// 32 concurrent `dispatch_stream` calls on one stream, each adding a line
/// (no domain limit): every one is accepted once its retries outlast the
/// others (a lost race re-runs the flow), and the stream holds exactly the
/// accepted lines, each once, at consecutive revisions from 0.
pub async fn concurrent_stream_dispatches_lose_nothing<S: LocalEventStore>(store: &S) -> CaseResult {
    let parties = 32u32;
    let add_line = decider(
        0u32,
        |line: &u32, _: &u32| {
            Ok::<_, SoldOut>(vec![TicketSold {
                concert: 7,
                buyer: *line,
            }])
        },
        |lines: u32, _: &TicketSold| lines + 1,
    );
    let add_line = &add_line;
    let racers = (0..parties).map(|line| async move {
        let interleaved = Interleave::new(store, u64::from(line) + 500);
        // Each round of the race has a winner, so `parties` runs suffice.
        let dispatcher = Dispatcher::new(&interleaved, JsonCodec::<TicketSold>::new())
            .with_retry(RetryPolicy::attempts(parties + 1));
        dispatcher.dispatch_stream(add_line, &line, &concert_stream(7)).await
    });
    let outcomes = join_all(racers).await;
    let mut accepted = Vec::new();
    for outcome in outcomes {
        let committed = outcome.map_err(|e| format!("a stream dispatch was lost: {e}"))?;
        assert_eq!(committed.len(), 1);
        accepted.extend(committed);
    }
    let stored = store.read_stream(&concert_stream(7), StreamRevision::FIRST).await?;
    let revisions: Vec<u64> = stored.iter().map(|r| r.revision.value()).collect();
    assert_eq!(
        revisions,
        (0..u64::from(parties)).collect::<Vec<_>>(),
        "revisions must be consecutive from 0"
    );
    let codec = JsonCodec::<TicketSold>::new();
    let mut lines: Vec<u32> = stored
        .into_iter()
        .map(|r| codec.decode(&r).map(|e| e.buyer))
        .collect::<Result<_, _>>()?;
    lines.sort_unstable();
    assert_eq!(
        lines,
        (0..parties).collect::<Vec<_>>(),
        "every accepted line exactly once"
    );
    accepted.sort_by_key(|r| r.revision);
    assert_eq!(
        accepted.iter().map(|r| r.revision.value()).collect::<Vec<_>>(),
        revisions,
        "each dispatch returns the revision its line holds"
    );
    Ok(())
}
