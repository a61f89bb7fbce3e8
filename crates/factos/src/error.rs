//! Errors: what a store reports and what a dispatch returns.
//!
//! Every factos error says what failed in its own words and returns its
//! cause from [`std::error::Error::source`], never both, so a printed chain
//! shows each cause once. [`ErrorChain`] prints the whole chain on one
//! line.
//!
//! Conflicts are core types with structured fields so callers can branch on
//! them without knowing which backend produced them; backends map their
//! native signals (unique violations, SQLSTATE 40001/40P01, "wrong expected
//! version") onto these.

use thiserror::Error;

use crate::event::{EventId, InvalidMetadata};
use crate::name::{EventType, InvalidName, StreamId};
use crate::position::{AppendCondition, ExpectedRevision, Position, StreamRevision};
use crate::query::Query;

/// An error and its causes on one line, `what: why: why`, each cause once:
/// what a log line or a user needs, where `{}` of the error alone says only
/// what failed at the outermost layer.
///
/// ```
/// use factos::{ErrorChain, Operation, StreamId, StoreError};
/// let cause = std::io::Error::other("disk full");
/// let error = Operation::Append { stream: StreamId::new("s")? }.failed::<String>(StoreError::backend(cause));
/// assert_eq!(error.to_string(), "appending to stream s failed");
/// assert_eq!(ErrorChain(&error).to_string(), "appending to stream s failed: storage backend failed: disk full");
/// # Ok::<(), factos::InvalidName>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut printed = self.0.to_string();
        f.write_str(&printed)?;
        let mut cause = self.0.source();
        while let Some(inner) = cause {
            let text = inner.to_string();
            // Errors of other crates may repeat their cause's words
            // (transparent wrappers always do): print them once.
            if !printed.ends_with(&text) {
                write!(f, ": {text}")?;
                printed = text;
            }
            cause = inner.source();
        }
        Ok(())
    }
}

/// A boxed error from a backend or an application codec, kept as a source so
/// the cause chain stays intact and can be downcast.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The DCB conflict: an event matching the condition's query was committed
/// after the position the decision saw.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("append condition failed: expected {condition}, found a matching event at position {conflicting}")]
pub struct AppendConditionFailed {
    /// The condition that was not met.
    pub condition: AppendCondition,
    /// The position of the first matching event that violates it.
    pub conflicting: Position,
}

/// The stream-revision conflict: the stream was not where the appender
/// expected it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("stream {stream} expected {expected}, but its last revision is {}", display_revision(.actual))]
pub struct RevisionMismatch {
    /// The stream appended to.
    pub stream: StreamId,
    /// What the appender expected.
    pub expected: ExpectedRevision,
    /// The stream's last revision when the append was checked.
    pub actual: Option<StreamRevision>,
}

fn display_revision(revision: &Option<StreamRevision>) -> String {
    revision.map_or_else(|| "none (no stream)".to_owned(), |r| r.to_string())
}

/// A backend was asked to enforce an append condition it cannot enforce.
///
/// Backends never ignore a condition: they refuse the append with this error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{backend} cannot enforce this append condition: {reason}")]
pub struct UnsupportedAppendCondition {
    /// The backend that refused.
    pub backend: &'static str,
    /// Why it cannot.
    pub reason: String,
}

/// A backend was asked to read with a query it cannot evaluate (a SQL
/// [`crate::Predicate`] on a store without SQL).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{backend} cannot evaluate this query: {reason}")]
pub struct UnsupportedQuery {
    /// The backend that refused.
    pub backend: &'static str,
    /// Why it cannot.
    pub reason: String,
}

/// A SQL [`crate::Predicate`] that is not one well-formed SQL expression of
/// the backend's dialect, or that uses parameters it does not bind.
///
/// SQL backends parse every predicate before they run it and refuse
/// anything else, so a mistake in one can never widen a query or an append
/// condition beyond its item (a predicate like `1=1) OR (1=1`).
#[derive(Debug, Error)]
#[error("invalid SQL predicate {sql:?}: {reason}")]
pub struct InvalidPredicate {
    /// The predicate's SQL, as given.
    pub sql: String,
    /// What is wrong with it.
    pub reason: String,
    /// The SQL parser's error, when it produced one.
    #[source]
    pub source: Option<BoxError>,
}

/// An event id in the batch is already taken by a different event or batch.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("event id {id} is already used by the event at position {existing}")]
pub struct DuplicateEventId {
    /// The id that is taken.
    pub id: EventId,
    /// Where the event that holds it sits.
    pub existing: Position,
}

/// An append request that no store could accept.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InvalidAppend {
    /// The batch has no events.
    #[error("an append needs at least one event")]
    EmptyBatch,
    /// The same id appears twice in one batch.
    #[error("event id {0} appears twice in one batch")]
    RepeatedId(EventId),
    /// An event carries metadata no backend accepts.
    #[error("event {id} has invalid metadata")]
    InvalidMetadata {
        /// The event.
        id: EventId,
        /// What is wrong.
        #[source]
        source: InvalidMetadata,
    },
    /// An event larger than the backend stores (Cloudflare D1: 2,000,000
    /// bytes per row).
    #[error("event {id} needs {bytes} bytes; {backend} stores at most {limit} per event")]
    TooLarge {
        /// The backend that refused.
        backend: &'static str,
        /// The event.
        id: EventId,
        /// About how many bytes it needs.
        bytes: usize,
        /// The backend's limit.
        limit: usize,
    },
    /// A name valid for factos that the backend reserves for its own use
    /// (KurrentDB: event types and streams starting with `$`).
    #[error("{backend} reserves the name {name:?}: {reason}")]
    ReservedName {
        /// The backend that refused.
        backend: &'static str,
        /// The event type or stream name.
        name: String,
        /// What the backend uses such names for.
        reason: &'static str,
    },
    /// An event carries personal data of a subject that was forgotten
    /// ([`crate::forget`]): no key is ever created for it again, so it
    /// cannot be written.
    #[error("event {id} carries personal data of a forgotten subject")]
    SubjectForgotten {
        /// The event.
        id: EventId,
    },
    /// An event's personal data cannot be encrypted (its payload is not
    /// JSON, or names no subject).
    #[error("event {id}'s personal data cannot be encrypted: {reason}")]
    PersonalData {
        /// The event.
        id: EventId,
        /// What is wrong.
        reason: String,
    },
}

/// What a store operation can fail with.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The append condition was not met; nothing was written.
    #[error(transparent)]
    ConditionFailed(#[from] AppendConditionFailed),
    /// The expected stream revision was not met; nothing was written.
    #[error(transparent)]
    RevisionMismatch(#[from] RevisionMismatch),
    /// The backend cannot enforce the requested condition; nothing was written.
    #[error(transparent)]
    UnsupportedCondition(#[from] UnsupportedAppendCondition),
    /// The backend cannot evaluate the query (a SQL predicate on a store
    /// without SQL).
    #[error(transparent)]
    UnsupportedQuery(#[from] UnsupportedQuery),
    /// A SQL predicate of the query is not one well-formed expression;
    /// nothing was read or written.
    #[error(transparent)]
    InvalidPredicate(#[from] InvalidPredicate),
    /// An event id is already taken; nothing was written.
    #[error(transparent)]
    DuplicateEventId(#[from] DuplicateEventId),
    /// The request itself is malformed; nothing was written.
    #[error(transparent)]
    InvalidAppend(#[from] InvalidAppend),
    /// A transient conflict between concurrent transactions (a deadlock, a
    /// serialization failure, a busy database). Nothing was written and
    /// re-running the whole decision is safe.
    #[error("transient conflict with a concurrent transaction")]
    Contention(#[source] BoxError),
    /// The backend failed (connection lost, disk full, corrupt row). For
    /// appends, the backend guarantees the batch was written entirely or not
    /// at all; a lost acknowledgement can be resolved by re-sending the same
    /// batch, which is idempotent.
    #[error("storage backend failed")]
    Backend(#[source] BoxError),
    /// The query exceeds the store's [`crate::QueryLimits`]; nothing was
    /// read or written.
    #[error(transparent)]
    QueryTooLarge(#[from] crate::limits::QueryTooLarge),
    /// An import ([`crate::admin::Admin::import`]) refused a record;
    /// nothing of its batch was written.
    #[error(transparent)]
    ImportRefused(#[from] crate::admin::ImportRefused),
}

impl StoreError {
    /// Wraps a backend failure.
    pub fn backend(error: impl Into<BoxError>) -> Self {
        StoreError::Backend(error.into())
    }

    /// Wraps a transient, retry-safe conflict.
    pub fn contention(error: impl Into<BoxError>) -> Self {
        StoreError::Contention(error.into())
    }

    /// Whether this is a DCB or stream-revision conflict, or a transient
    /// conflict: re-reading and deciding again may succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            StoreError::ConditionFailed(_) | StoreError::RevisionMismatch(_) | StoreError::Contention(_)
        )
    }
}

/// A stored payload could not be decoded by the application's codec.
#[derive(Debug, Error)]
#[error("cannot decode event at position {position} of type {event_type} (version {version})")]
pub struct DecodeError {
    /// Where the event sits.
    pub position: Position,
    /// Its stored type.
    pub event_type: EventType,
    /// Its stored payload version.
    pub version: u32,
    /// The codec's own error.
    #[source]
    pub source: BoxError,
}

/// A projection's `apply` or `reset` failed in a backend's projector; its
/// transaction was rolled back, so its checkpoint stays before the failing
/// batch.
#[derive(Debug, Error)]
#[error("projection {name} failed{}", .position.map(|p| format!(" in the batch from position {p}")).unwrap_or_default())]
pub struct ProjectionFailed {
    /// The projection.
    pub name: String,
    /// The first event of the failing batch (`None` for a reset).
    pub position: Option<Position>,
    /// The projection's error.
    #[source]
    pub source: BoxError,
}

/// A domain event could not be encoded by the application's codec.
#[derive(Debug, Error)]
#[error("cannot encode event")]
pub struct EncodeError {
    /// The codec's own error.
    #[source]
    pub source: BoxError,
}

/// What reading a context, loading a stream or dispatching a command can fail
/// with. `D` is the application's domain error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error<D> {
    /// The decider rejected the command; nothing was written.
    #[error("command rejected: {0}")]
    Domain(D),
    /// The append condition kept failing under the retry policy; nothing was
    /// written by the last attempt.
    #[error("gave up after {attempts} attempts: concurrent writers kept changing the context")]
    AppendConditionFailed {
        /// The conflict of the last attempt, with its condition.
        #[source]
        source: AppendConditionFailed,
        /// How many times the flow ran.
        attempts: u32,
    },
    /// The stream kept moving under the retry policy; nothing was written by
    /// the last attempt.
    #[error("gave up after {attempts} attempts: concurrent writers kept moving the stream")]
    RevisionMismatch {
        /// The conflict of the last attempt.
        #[source]
        source: RevisionMismatch,
        /// How many times the flow ran.
        attempts: u32,
    },
    /// The store failed during `operation`.
    #[error("{operation} failed")]
    Store {
        /// What the dispatcher was doing.
        operation: Operation,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A stored event could not be decoded; the read stopped there.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A new event could not be encoded; nothing was written.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// An input (event type, tag, stream id) was invalid.
    #[error(transparent)]
    InvalidInput(#[from] InvalidName),
}

impl<D> Error<D> {
    /// Whether the command was rejected by the domain.
    pub fn is_domain(&self) -> bool {
        matches!(self, Error::Domain(_))
    }

    /// Whether the dispatch gave up because of concurrent writers.
    pub fn is_conflict(&self) -> bool {
        match self {
            Error::AppendConditionFailed { .. } | Error::RevisionMismatch { .. } => true,
            Error::Store { source, .. } => source.is_conflict(),
            _ => false,
        }
    }

    /// The domain error, if the command was rejected by the domain.
    pub fn domain(&self) -> Option<&D> {
        match self {
            Error::Domain(d) => Some(d),
            _ => None,
        }
    }

    /// The domain error by value, if the command was rejected by the domain.
    pub fn into_domain(self) -> Option<D> {
        match self {
            Error::Domain(d) => Some(d),
            _ => None,
        }
    }

    /// The store's error, if the store failed.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            Error::Store { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Error<std::convert::Infallible> {
    /// The same error with any domain error type: what the explicit flow
    /// ([`crate::Dispatcher::read`], [`crate::Dispatcher::append`]), which
    /// never rejects a command, returns inside an application's own
    /// `Result<_, Error<MyRejection>>`.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use factos::Error;
    /// fn decide() -> Result<(), Error<&'static str>> {
    ///     let failed: Result<(), Error<Infallible>> = Ok(());
    ///     failed.map_err(Error::cast)?;
    ///     Err(Error::Domain("sold out"))
    /// }
    /// assert!(decide().is_err_and(|e| e.is_domain()));
    /// ```
    pub fn cast<D>(self) -> Error<D> {
        match self {
            Error::Domain(never) => match never {},
            Error::AppendConditionFailed { source, attempts } => Error::AppendConditionFailed { source, attempts },
            Error::RevisionMismatch { source, attempts } => Error::RevisionMismatch { source, attempts },
            Error::Store { operation, source } => Error::Store { operation, source },
            Error::Decode(e) => Error::Decode(e),
            Error::Encode(e) => Error::Encode(e),
            Error::InvalidInput(e) => Error::InvalidInput(e),
        }
    }
}

/// What a [`crate::Dispatcher`] was doing when the store failed, named in
/// the caller's terms so that `{}` of an [`Error`](enum@Error) says it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Reading the events of a query.
    Read {
        /// The query.
        query: Query,
    },
    /// Reading the events of a stream.
    LoadStream {
        /// The stream.
        stream: StreamId,
    },
    /// Deciding on a query's events and appending to a stream.
    DispatchContext {
        /// The context query.
        query: Query,
        /// The stream appended to.
        stream: StreamId,
    },
    /// Deciding on a stream's events and appending to it.
    DispatchStream {
        /// The stream.
        stream: StreamId,
    },
    /// Appending events the application decided on itself.
    Append {
        /// The stream appended to.
        stream: StreamId,
    },
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operation::Read { query } => write!(f, "reading {query}"),
            Operation::LoadStream { stream } => write!(f, "loading stream {stream}"),
            Operation::DispatchContext { query, stream } => {
                write!(f, "dispatching to stream {stream} on context {query}")
            }
            Operation::DispatchStream { stream } => write!(f, "dispatching to stream {stream}"),
            Operation::Append { stream } => write!(f, "appending to stream {stream}"),
        }
    }
}

impl Operation {
    /// Wraps `source` as a failure of this operation.
    pub fn failed<D>(self, source: StoreError) -> Error<D> {
        Error::Store {
            operation: self,
            source,
        }
    }
}

/// Separates a command's domain rejection from a failure of the machinery.
///
/// Applications usually treat the two differently: a rejection is an answer
/// for the caller, a failure is an error to report.
///
/// ```
/// use factos::{Error, SplitRejection};
/// let rejected: Result<(), Error<&str>> = Err(Error::Domain("sold out"));
/// assert_eq!(rejected.split_rejection().ok(), Some(Err("sold out")));
/// ```
pub trait SplitRejection<T, D> {
    /// `Ok(Ok(value))` on success, `Ok(Err(rejection))` when the domain
    /// rejected the command, `Err(error)` for every other failure.
    ///
    /// # Errors
    ///
    /// Every [`Error`](enum@Error) but [`Error::Domain`].
    fn split_rejection(self) -> Result<Result<T, D>, Error<D>>;
}

impl<T, D> SplitRejection<T, D> for Result<T, Error<D>> {
    fn split_rejection(self) -> Result<Result<T, D>, Error<D>> {
        match self {
            Ok(value) => Ok(Ok(value)),
            Err(Error::Domain(rejection)) => Ok(Err(rejection)),
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{QueryItem, Tag};

    #[test]
    fn a_store_failure_says_what_was_being_done_and_why_and_keeps_its_chain() -> Result<(), InvalidName> {
        #[derive(Debug, Error)]
        #[error("SQLSTATE 53100: could not extend file")]
        struct DiskFull;
        let error: Error<String> = Operation::DispatchContext {
            query: Query::from(QueryItem::tags([Tag::new("concert:1")?])),
            stream: StreamId::new("concert-1")?,
        }
        .failed(StoreError::backend(DiskFull));
        assert_eq!(
            error.to_string(),
            "dispatching to stream concert-1 on context (any type with concert:1) failed"
        );
        assert_eq!(
            ErrorChain(&error).to_string(),
            "dispatching to stream concert-1 on context (any type with concert:1) failed: \
             storage backend failed: SQLSTATE 53100: could not extend file"
        );
        let store = std::error::Error::source(&error).and_then(|e| e.downcast_ref::<StoreError>());
        assert!(matches!(store, Some(StoreError::Backend(_))));
        let cause = store.and_then(std::error::Error::source);
        assert!(cause.is_some_and(|c| c.is::<DiskFull>()));
        Ok(())
    }

    #[test]
    fn every_layer_leaves_its_cause_to_source_so_a_chain_prints_each_cause_once() -> Result<(), InvalidName> {
        #[derive(Debug, Error)]
        #[error("the disk is full")]
        struct DiskFull;
        let stream = StreamId::new("s")?;
        let conflict = AppendConditionFailed {
            condition: crate::AppendCondition::new(Query::all(), None),
            conflicting: Position::new(3),
        };
        let errors: Vec<Error<String>> = vec![
            Operation::Append { stream: stream.clone() }.failed(StoreError::backend(DiskFull)),
            Operation::Append { stream: stream.clone() }.failed(StoreError::contention(DiskFull)),
            Error::AppendConditionFailed {
                source: conflict,
                attempts: 3,
            },
            Error::Decode(DecodeError {
                position: Position::new(1),
                event_type: EventType::new("E")?,
                version: 1,
                source: Box::new(DiskFull),
            }),
            Operation::Read { query: Query::all() }.failed(StoreError::backend(ProjectionFailed {
                name: "board".into(),
                position: None,
                source: Box::new(DiskFull),
            })),
        ];
        for error in &errors {
            let mut texts = vec![error.to_string()];
            let mut cause = std::error::Error::source(error);
            while let Some(inner) = cause {
                texts.push(inner.to_string());
                cause = inner.source();
            }
            for (i, outer) in texts.iter().enumerate() {
                for inner in &texts[i + 1..] {
                    assert!(!outer.contains(inner.as_str()), "{outer:?} repeats its cause {inner:?}");
                }
            }
            let printed = ErrorChain(error).to_string();
            assert!(printed.matches("the disk is full").count() <= 1, "{printed}");
        }
        Ok(())
    }
}
