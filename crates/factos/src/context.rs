//! What a decision saw: a folded context or a loaded stream.

use crate::name::StreamId;
use crate::position::{AppendCondition, ExpectedRevision, Position, StreamRevision};
use crate::query::Query;
use crate::recorded::Recorded;

/// The result of reading a consistency boundary given by a query: the
/// matching events, their fold, and the condition that keeps a decision on
/// them valid.
///
/// [`crate::Dispatcher::read`] returns one without a fold (`S = ()`): the
/// decoded events and the position to append after, for applications that
/// decide in their own code and append with
/// [`append_condition`](Context::append_condition).
#[derive(Debug, Clone, PartialEq)]
pub struct Context<E, S = ()> {
    /// The query that selected the events.
    pub query: Query,
    /// The events folded into a state.
    pub state: S,
    /// The matching events, in position order.
    pub events: Vec<Recorded<E>>,
    /// The highest position among the matching events; `None` when none
    /// matched.
    pub position: Option<Position>,
}

impl<E, S> Context<E, S> {
    /// The condition to append with so that the append fails if any event
    /// matching the query was committed after this context was read.
    pub fn append_condition(&self) -> AppendCondition {
        AppendCondition::new(self.query.clone(), self.position)
    }
}

/// The result of reading one stream: its events, their fold and its revision.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedStream<E, S> {
    /// The stream that was read.
    pub stream: StreamId,
    /// The events folded into a state.
    pub state: S,
    /// The stream's events in revision order.
    pub events: Vec<Recorded<E>>,
    /// The revision of the stream's last event; `None` when it has none.
    pub revision: Option<StreamRevision>,
}

impl<E, S> LoadedStream<E, S> {
    /// The expectation to append with so that the append fails if the stream
    /// changed after it was loaded.
    pub fn expected_revision(&self) -> ExpectedRevision {
        ExpectedRevision::from_current(self.revision)
    }
}
