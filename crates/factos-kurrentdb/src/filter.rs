//! What of a factos query KurrentDB can evaluate on the server.
//!
//! A server-side `$all` filter tests one thing: the event type or the
//! stream name, against a regular expression or prefixes. A factos query
//! narrows by event type when every item names types; then the server
//! sends only events of those types (`^(?:A|B)$`, each name escaped).
//! Otherwise (an empty query, or an item with tags only) the server can
//! only leave out system events, and every other event crosses the wire to
//! be matched here. Tags are always matched here: KurrentDB has no index
//! over custom metadata.

use std::collections::BTreeSet;
use std::sync::Arc;

use factos::{Query, StreamId, UnsupportedQuery};
use kurrentdb::{RecordedEvent, SubscriptionFilter};

use crate::BACKEND;
use crate::mapping::is_system;

/// Which events of the database a store sees: every non-system event, or
/// those of the streams whose names start with a prefix (a store scoped to
/// one application or tenant sharing the database). The store's stream
/// names are the database's without the prefix.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    prefix: Option<Arc<str>>,
}

impl Scope {
    /// The streams starting with `prefix`.
    pub(crate) fn prefixed(prefix: &str) -> Self {
        Self {
            prefix: Some(prefix.into()),
        }
    }

    /// The database's name for `stream`.
    pub(crate) fn stream_name(&self, stream: &StreamId) -> String {
        self.raw_stream(stream.as_str())
    }

    /// The database's name for a stream the store keeps for itself
    /// (checkpoints, parked effects).
    pub(crate) fn raw_stream(&self, name: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}{name}"),
            None => name.to_owned(),
        }
    }

    /// The store's name for an event of this scope: its stream's name
    /// without the prefix; `None` for an event outside the scope, or a
    /// system event.
    pub(crate) fn sees<'e>(&self, event: &'e RecordedEvent) -> Option<&'e str> {
        if is_system(&event.event_type) {
            return None;
        }
        match &self.prefix {
            Some(prefix) => event.stream_id().strip_prefix(&**prefix),
            None => Some(event.stream_id()),
        }
    }

    /// The server-side part of `query`: its event types when every item
    /// names some (and the store is not scoped), else only "not a system
    /// event" (or "in the scope's streams": one server filter tests one
    /// thing).
    pub(crate) fn server_filter(&self, query: &Query) -> SubscriptionFilter {
        if let Some(prefix) = &self.prefix {
            return SubscriptionFilter::on_stream_name().add_prefix(&**prefix);
        }
        match narrowing_types(query) {
            Some(types) => SubscriptionFilter::on_event_type().regex(type_regex(&types)),
            None => SubscriptionFilter::on_event_type().exclude_system_events(),
        }
    }

    /// Whether the server filter for `query` leaves out events of the
    /// scope (it names event types).
    pub(crate) fn narrows(&self, query: &Query) -> bool {
        self.prefix.is_none() && narrowing_types(query).is_some()
    }

    /// Whether the server's filter already decides `query`, so no event it
    /// sends is dropped here (a read can then ask for exactly what it
    /// needs).
    pub(crate) fn decided_by_server(&self, query: &Query) -> bool {
        query.matches_all()
            || (self.prefix.is_none() && query.items().iter().all(|item| item.required_tags().is_empty()))
    }
}

/// Refuses queries with SQL predicates: KurrentDB has no SQL.
pub(crate) fn refuse_predicates(query: &Query) -> Result<(), UnsupportedQuery> {
    if query.has_predicates() {
        return Err(UnsupportedQuery {
            backend: BACKEND,
            reason: "KurrentDB has no SQL; queries select by event type and tags only".into(),
        });
    }
    Ok(())
}

/// The event types a query is limited to, when every item names some.
fn narrowing_types(query: &Query) -> Option<BTreeSet<&str>> {
    if query.matches_all() {
        return None;
    }
    let mut types = BTreeSet::new();
    for item in query.items() {
        if item.event_types().is_empty() {
            return None;
        }
        types.extend(item.event_types().iter().map(|t| t.as_str()));
    }
    Some(types)
}

/// An anchored regular expression matching exactly `types`. `regex::escape`
/// escapes only punctuation, which .NET's engine (the server's) reads as
/// the literal character too.
fn type_regex(types: &BTreeSet<&str>) -> String {
    let alternatives: Vec<String> = types.iter().map(|t| regex::escape(t)).collect();
    format!("^(?:{})$", alternatives.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use factos::{EventType, QueryItem, Tag};

    fn types(names: &[&str]) -> QueryItem {
        QueryItem::types(names.iter().filter_map(|n| EventType::new(*n).ok()))
    }

    #[test]
    fn type_regex_matches_exactly_the_named_types() -> Result<(), regex::Error> {
        let names: BTreeSet<&str> = ["Order.Placed", "a+b", "(x)|y", "Ünïcode ✓"].into_iter().collect();
        let regex = regex::Regex::new(&type_regex(&names))?;
        for name in &names {
            assert!(regex.is_match(name), "{name} must match");
        }
        for other in ["OrderxPlaced", "aab", "x", "y", "Order.Placed2", "$Order.Placed", ""] {
            assert!(!regex.is_match(other), "{other} must not match");
        }
        Ok(())
    }

    #[test]
    fn only_queries_naming_types_in_every_item_narrow_on_the_server() {
        let tag = |t: &str| Tag::new(t).ok();
        assert!(narrowing_types(&Query::all()).is_none());
        assert!(narrowing_types(&Query::new([types(&["A"]), types(&["B"])])).is_some());
        let tags_only = QueryItem::tags(tag("x"));
        assert!(narrowing_types(&Query::new([types(&["A"]), tags_only.clone()])).is_none());
        let unscoped = Scope::default();
        assert!(unscoped.decided_by_server(&Query::new([types(&["A"])])));
        assert!(!unscoped.decided_by_server(&Query::new([tags_only])));
        assert!(!Scope::prefixed("t1-").decided_by_server(&Query::new([types(&["A"])])));
    }
}
