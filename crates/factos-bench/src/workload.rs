//! The workloads: ticket sales for dispatch (the conformance suite's ticket
//! domain), and plain tagged events for appends and reads.

use factos::{AppendRequest, EventId, EventType, Metadata, NewEvent, Query, QueryItem, StreamId, Tag};

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

/// The context of one customer's orders.
pub fn customer_query(customer: u64) -> anyhow::Result<Query> {
    Ok(Query::from(
        QueryItem::types([EventType::new("OrderPlaced")?]).with_tags([Tag::new(format!("customer:{customer}"))?]),
    ))
}
