//! What a backend declares it cannot enforce, and the refusals the suite
//! then checks instead.

use factos::{
    AppendCondition, AppendRequest, DecisionScope, Dispatcher, Error, JsonCodec, LocalEventStore, Query, ReadOptions,
    StoreError,
};

use crate::fixtures::{event, item, query, rng, stream};
use crate::tickets::{Buy, TicketSold, box_office, concert_query, concert_stream};

/// What a backend enforces. A backend that cannot enforce something says
/// so here, and the cases that need it check that the backend refuses it
/// with a typed error and writes nothing, instead of being skipped.
///
/// ```
/// # use factos::MemoryStore;
/// # async fn fresh_store() -> MemoryStore { MemoryStore::new() }
/// factos_conformance::conformance_tests!(fresh_store, factos_conformance::Capabilities::STREAMS_ONLY);
/// # fn main() {}
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `FailIfEventsMatch(query, after)` on appends, and query-scoped
    /// decisions (`dispatch_context`). Without it, both must fail with
    /// [`StoreError::UnsupportedCondition`] before anything is written.
    pub query_conditions: bool,
    /// An event id, once taken, is refused in any later batch of any
    /// stream. Without it, the backend still recognises a re-sent batch in
    /// its stream (same records back, or a duplicate-id error when the
    /// content differs), but the same id in another stream, or mixed into a
    /// new batch, is a new event.
    pub unique_event_ids: bool,
}

impl Capabilities {
    /// Everything: the SQL backends and the memory store.
    pub const ALL: Self = Self {
        query_conditions: true,
        unique_event_ids: true,
    };

    /// A stream store (KurrentDB): expected revisions only, ids recognised
    /// per stream.
    pub const STREAMS_ONLY: Self = Self {
        query_conditions: false,
        unique_event_ids: false,
    };
}

impl Default for Capabilities {
    fn default() -> Self {
        Self::ALL
    }
}

async fn count<S: LocalEventStore>(store: &S) -> Result<usize, StoreError> {
    Ok(store.read(&Query::all(), ReadOptions::forwards()).await?.len())
}

/// Checks that `request` (which carries a condition) is refused with
/// [`StoreError::UnsupportedCondition`] and writes nothing.
pub(crate) async fn assert_condition_refused<S: LocalEventStore>(
    store: &S,
    request: AppendRequest,
) -> Result<(), StoreError> {
    assert!(request.condition.is_some(), "the case must send a condition");
    let before = count(store).await?;
    match store.append(request).await {
        Err(StoreError::UnsupportedCondition(refusal)) => {
            assert!(!refusal.reason.is_empty(), "a refusal says why");
        }
        other => panic!("a backend without query conditions must refuse a conditional append, got {other:?}"),
    }
    assert_eq!(count(store).await?, before, "a refused append writes nothing");
    Ok(())
}

/// Checks every way of asking a backend without query conditions for one:
/// conditional appends (with and without a position, with the empty
/// query), a query-scoped decision, and `dispatch_context`. Each is
/// refused with [`StoreError::UnsupportedCondition`] and nothing is
/// written; a plain append still works afterwards.
pub(crate) async fn assert_query_conditions_refused<S: LocalEventStore>(store: &S) -> Result<(), StoreError> {
    let mut rng = rng(90);
    let before = count(store).await?;
    let first = store
        .append(AppendRequest::new(
            stream("s"),
            vec![event(&mut rng, "Sold", &["concert:1"], b"")],
        ))
        .await?;
    let seen = first.records.last().map(|r| r.position);
    for condition in [
        AppendCondition::new(query([item(&["Sold"], &["concert:1"])]), seen),
        AppendCondition::new(query([item(&[], &["concert:2"])]), None),
        AppendCondition::new(Query::all(), seen),
    ] {
        let request =
            AppendRequest::new(stream("s"), vec![event(&mut rng, "Sold", &["concert:1"], b"")]).condition(condition);
        assert_condition_refused(store, request).await?;
    }
    match store.begin_decision(&DecisionScope::Query(concert_query(1))).await {
        Err(StoreError::UnsupportedCondition(_)) => {}
        Err(other) => panic!("a query-scoped decision must be refused as UnsupportedCondition, got {other:?}"),
        Ok((decision, _)) => {
            store.abandon_decision(decision).await;
            panic!("a backend without query conditions must refuse a query-scoped decision");
        }
    }
    let dispatcher = Dispatcher::new(store, JsonCodec::<TicketSold>::new());
    let buy = Buy { concert: 1, buyer: 1 };
    match dispatcher
        .dispatch_context(&box_office(10), &buy, &concert_query(1), &concert_stream(1))
        .await
    {
        Err(Error::Store {
            source: StoreError::UnsupportedCondition(_),
            ..
        }) => {}
        other => panic!("dispatch_context must fail with UnsupportedCondition, got {other:?}"),
    }
    assert_eq!(count(store).await?, before + 1, "refusals write nothing");
    store
        .append(AppendRequest::new(
            stream("s"),
            vec![event(&mut rng, "Sold", &["concert:1"], b"")],
        ))
        .await?;
    assert_eq!(count(store).await?, before + 2);
    Ok(())
}
