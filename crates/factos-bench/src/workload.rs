//! The workloads: ticket sales for dispatch (the conformance suite's ticket
//! domain), and plain tagged events for appends and reads.

use std::time::Instant;

use factos::{
    AppendRequest, Dispatcher, EventId, EventStore, EventType, JsonCodec, Metadata, NewEvent, Query, QueryItem,
    StreamId, Tag,
};

pub use factos_conformance::tickets::{Buy, TicketSold, box_office, concert_query, concert_stream};

/// The `i`-th event of an order log: an `OrderPlaced` tagged with its
/// customer (`customers` of them, each getting every `customers`-th event)
/// and a unique order id, with a small JSON payload.
pub fn order_event(i: u64, customers: u64) -> anyhow::Result<NewEvent> {
    let customer = i % customers.max(1);
    let payload = format!(r#"{{"order":{i},"customer":{customer},"total":{}}}"#, 10 + i % 90);
    Ok(NewEvent::new(
        EventId::from_uuid(uuid::Uuid::new_v4()),
        EventType::new("OrderPlaced")?,
        payload.into_bytes(),
    )
    .with_tags([
        Tag::new(format!("customer:{customer}"))?,
        Tag::new(format!("order:{i}"))?,
    ])
    .with_metadata(Metadata::new().with("source", "bench")))
}

/// A batch of order events `first..first + size` for one stream.
pub fn order_batch(first: u64, size: u64, customers: u64, stream: &StreamId) -> anyhow::Result<AppendRequest> {
    let events = (first..first + size)
        .map(|i| order_event(i, customers))
        .collect::<anyhow::Result<_>>()?;
    Ok(AppendRequest::new(stream.clone(), events))
}

/// The next number of a fixed pseudo-random sequence (a 64-bit linear
/// congruential generator over `state`), in `0..bound`: every run picks
/// the same customers.
pub fn next_random(state: &mut u64, bound: u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (*state >> 33) % bound.max(1)
}

/// The context of one customer's orders.
pub fn customer_query(customer: u64) -> anyhow::Result<Query> {
    Ok(Query::from(
        QueryItem::types([EventType::new("OrderPlaced")?]).with_tags([Tag::new(format!("customer:{customer}"))?]),
    ))
}

/// Sells tickets of `concert` through `dispatch_context`, one after another,
/// to buyers numbered from `first_buyer`, until `deadline`; returns the
/// accepted and the failed dispatches.
pub async fn sell_until<S: EventStore>(store: &S, concert: u32, first_buyer: u32, deadline: Instant) -> (u64, u64) {
    let (query, stream) = (concert_query(concert), concert_stream(concert));
    let dispatcher = Dispatcher::new(store, JsonCodec::<TicketSold>::new());
    let (mut accepted, mut failed) = (0u64, 0u64);
    let mut buyer = first_buyer;
    while Instant::now() < deadline {
        buyer += 1;
        match dispatcher
            .dispatch_context(&box_office(u32::MAX), &Buy { concert, buyer }, &query, &stream)
            .await
        {
            Ok(_) => accepted += 1,
            Err(_) => failed += 1,
        }
    }
    (accepted, failed)
}
