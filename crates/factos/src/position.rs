//! Where events sit: global positions, stream revisions, and the conditions
//! an append is checked against.

use std::fmt;

use crate::query::Query;

/// The global position of a committed event: unique across the whole
/// store, starting at 1, and increasing along every order that a decision
/// can depend on.
///
/// What holds on every backend:
///
/// - within a batch, and within a stream, positions increase with the
///   revisions;
/// - every event a decision read has a lower position than the events the
///   decision appended, and an event matching an append condition's query
///   that commits after the condition was checked gets a higher position
///   than every event visible then (so `FailIfEventsMatch(query, after)`
///   means what it says);
/// - a reader never sees an event appear later with a lower position than
///   one it already saw *among the events of its query*.
///
/// What does **not** hold everywhere: positions in commit order across
/// unrelated events. SQLite, D1, KurrentDB and the memory store assign
/// positions in commit order; on PostgreSQL a writer takes its positions
/// before it commits, so an unrelated event with a lower position can
/// become visible after a higher one (followers use a cursor that accounts
/// for it; see [`crate::follow`]). Positions can also have gaps (a rolled
/// back append on PostgreSQL, KurrentDB's log positions).
///
/// "No position yet" (an empty store, a context with no matching events) is
/// `Option<Position>::None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Position(u64);

impl Position {
    /// The position of the first event ever appended.
    pub const FIRST: Position = Position(1);

    /// Wraps a raw position.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The raw value.
    pub const fn value(&self) -> u64 {
        self.0
    }

    /// The position after this one: where to read `from` (inclusive) to
    /// get only what came after an event already handled.
    ///
    /// ```
    /// use factos::{Position, ReadOptions};
    /// let handled = Position::new(41);
    /// let newer = ReadOptions::forwards().from(handled.next());
    /// assert!(newer.admits(Position::new(42)) && !newer.admits(handled));
    /// ```
    pub const fn next(&self) -> Position {
        Position(self.0.saturating_add(1))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The revision of an event inside its stream: 0 for the stream's first
/// event, then one more for each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct StreamRevision(u64);

impl StreamRevision {
    /// The revision of a stream's first event.
    pub const FIRST: StreamRevision = StreamRevision(0);

    /// Wraps a raw revision.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The raw value.
    pub const fn value(&self) -> u64 {
        self.0
    }

    /// The revision after this one.
    pub const fn next(&self) -> StreamRevision {
        StreamRevision(self.0 + 1)
    }
}

impl fmt::Display for StreamRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What the appender believes about the target stream: the stream-revision
/// consistency strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExpectedRevision {
    /// No check.
    #[default]
    Any,
    /// The stream must not have any event yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have exactly this revision.
    Exact(StreamRevision),
}

impl ExpectedRevision {
    /// The expectation that holds for a stream whose last revision is
    /// `current` (`None`: the stream has no events).
    pub fn from_current(current: Option<StreamRevision>) -> Self {
        current.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact)
    }

    /// Whether a stream whose last revision is `current` satisfies this
    /// expectation.
    pub fn is_satisfied_by(&self, current: Option<StreamRevision>) -> bool {
        match self {
            ExpectedRevision::Any => true,
            ExpectedRevision::NoStream => current.is_none(),
            ExpectedRevision::StreamExists => current.is_some(),
            ExpectedRevision::Exact(expected) => current == Some(*expected),
        }
    }
}

impl fmt::Display for ExpectedRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedRevision::Any => f.write_str("any revision"),
            ExpectedRevision::NoStream => f.write_str("no stream"),
            ExpectedRevision::StreamExists => f.write_str("an existing stream"),
            ExpectedRevision::Exact(r) => write!(f, "revision {r}"),
        }
    }
}

/// `FailIfEventsMatch(query, after)`: the append is rejected if any event
/// matching `query` was committed at a position greater than `after`.
///
/// `after: None` means "fail if any matching event exists at all": the
/// condition of a decision that saw no matching event.
///
/// ```
/// use factos::{AppendCondition, Position, Query};
/// let condition = AppendCondition::new(Query::all(), Some(Position::new(7)));
/// assert!(condition.rejects(Position::new(8)));
/// assert!(!condition.rejects(Position::new(7)));
/// assert!(AppendCondition::new(Query::all(), None).rejects(Position::FIRST));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppendCondition {
    /// The events the decision depended on.
    pub query: Query,
    /// The highest position the decision saw, if any.
    pub after: Option<Position>,
}

impl AppendCondition {
    /// The condition for a decision that read `query` up to `after`.
    pub fn new(query: Query, after: Option<Position>) -> Self {
        Self { query, after }
    }

    /// Whether a matching event at `position` violates this condition.
    pub fn rejects(&self, position: Position) -> bool {
        self.after.is_none_or(|after| position > after)
    }
}

impl fmt::Display for AppendCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.after {
            Some(after) => write!(f, "no event matching the query after position {after}"),
            None => f.write_str("no event matching the query"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_revision_cases() {
        let r1 = Some(StreamRevision::new(1));
        assert!(ExpectedRevision::Any.is_satisfied_by(None));
        assert!(ExpectedRevision::Any.is_satisfied_by(r1));
        assert!(ExpectedRevision::NoStream.is_satisfied_by(None));
        assert!(!ExpectedRevision::NoStream.is_satisfied_by(r1));
        assert!(!ExpectedRevision::StreamExists.is_satisfied_by(None));
        assert!(ExpectedRevision::StreamExists.is_satisfied_by(r1));
        assert!(ExpectedRevision::Exact(StreamRevision::new(1)).is_satisfied_by(r1));
        assert!(!ExpectedRevision::Exact(StreamRevision::new(0)).is_satisfied_by(r1));
        assert!(!ExpectedRevision::Exact(StreamRevision::new(0)).is_satisfied_by(None));
    }

    #[test]
    fn from_current_is_satisfied_by_current() {
        for current in [None, Some(StreamRevision::new(0)), Some(StreamRevision::new(9))] {
            assert!(ExpectedRevision::from_current(current).is_satisfied_by(current));
        }
    }
}
