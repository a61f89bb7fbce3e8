//! The workloads: ticket sales for dispatch, and plain tagged events for
//! appends and reads.

use factos::{
    AppendRequest, Decider, EventId, EventType, JsonEvent, Metadata, NewEvent, Query, QueryItem, StreamId, Tag, decider,
};
use serde::{Deserialize, Serialize};

/// Buy one ticket for a concert.
#[derive(Debug, Clone, Copy)]
pub struct Buy {
    pub concert: u32,
    pub buyer: u32,
}

/// A ticket was sold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketSold {
    pub concert: u32,
    pub buyer: u32,
}

impl JsonEvent for TicketSold {
    fn event_type(&self) -> &'static str {
        "TicketSold"
    }
    fn tags(&self) -> Vec<String> {
        vec![format!("concert:{}", self.concert), format!("buyer:{}", self.buyer)]
    }
}

/// The concert is sold out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoldOut;

impl std::fmt::Display for SoldOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sold out")
    }
}

/// Sells while fewer than `capacity` tickets are sold.
pub fn box_office(
    capacity: u32,
) -> impl Decider<Command = Buy, State = u32, Event = TicketSold, Error = SoldOut> + Send + Sync {
    decider(
        0u32,
        move |buy: &Buy, sold: &u32| {
            if *sold < capacity {
                Ok(vec![TicketSold {
                    concert: buy.concert,
                    buyer: buy.buyer,
                }])
            } else {
                Err(SoldOut)
            }
        },
        |sold: u32, _: &TicketSold| sold + 1,
    )
}

/// The context of a sale.
pub fn concert_query(concert: u32) -> anyhow::Result<Query> {
    Ok(Query::from(
        QueryItem::types([EventType::new("TicketSold")?]).with_tags([Tag::new(format!("concert:{concert}"))?]),
    ))
}

/// The stream of a concert's sales.
pub fn concert_stream(concert: u32) -> anyhow::Result<StreamId> {
    Ok(StreamId::new(format!("concert-{concert}"))?)
}

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
