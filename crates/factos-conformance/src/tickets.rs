//! The ticket-sales domain the dispatch cases use: buyers race for the
//! capacity of a concert.

use factos::{Decider, JsonEvent, Query, QueryItem, Tag, decider};
use serde::{Deserialize, Serialize};

use crate::fixtures::{stream, tag, ty};

/// The command: one ticket for `concert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buy {
    /// The concert.
    pub concert: u32,
    /// Who buys.
    pub buyer: u32,
}

/// The event: a ticket was sold. Version 2; version 1 called the fields
/// `show` and `customer` (see [`crate::cases::ticket_upcasters`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketSold {
    /// The concert.
    pub concert: u32,
    /// Who bought it.
    pub buyer: u32,
}

impl JsonEvent for TicketSold {
    fn event_type(&self) -> &'static str {
        "TicketSold"
    }
    fn tags(&self) -> Vec<String> {
        vec![format!("concert:{}", self.concert), format!("buyer:{}", self.buyer)]
    }
    fn version(&self) -> u32 {
        2
    }
}

/// The domain error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoldOut;

impl std::fmt::Display for SoldOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sold out")
    }
}

/// Sells while fewer than `capacity` tickets are sold.
pub fn box_office(capacity: u32) -> impl Decider<Command = Buy, State = u32, Event = TicketSold, Error = SoldOut> {
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

/// The consistency boundary of a sale: tickets sold for `concert`.
pub fn concert_query(concert: u32) -> Query {
    Query::from(QueryItem::types([ty("TicketSold")]).with_tags([concert_tag(concert)]))
}

/// The tag of `concert`.
pub fn concert_tag(concert: u32) -> Tag {
    tag(&format!("concert:{concert}"))
}

/// The stream sales of `concert` go to.
pub fn concert_stream(concert: u32) -> factos::StreamId {
    stream(&format!("concert-{concert}"))
}
