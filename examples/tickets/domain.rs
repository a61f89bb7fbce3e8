//! The ticket-sales domain, shared by the `tickets` example and the
//! `d1-tickets` worker: one decider, whatever the store.

use factos::{Decider, JsonEvent, decider};
use serde::{Deserialize, Serialize};

/// Buy one ticket for a concert.
#[derive(Debug, Clone, Copy)]
pub struct Buy {
    /// The concert.
    pub concert: u32,
    /// Who buys.
    pub buyer: u32,
}

/// A ticket was sold.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the concert is sold out")]
pub struct SoldOut;

/// Sells while fewer than `capacity` tickets are sold.
pub fn box_office(capacity: u32) -> impl Decider<Command = Buy, State = u32, Event = TicketSold, Error = SoldOut> {
    decider(
        0u32,
        move |buy: &Buy, sold: &u32| {
            if *sold >= capacity {
                return Err(SoldOut);
            }
            Ok(vec![TicketSold {
                concert: buy.concert,
                buyer: buy.buyer,
            }])
        },
        |sold: u32, _: &TicketSold| sold + 1,
    )
}
