//! The most one query may ask of a store: checked before any backend runs
//! it, the same way on every backend.
//!
//! A query is the consistency boundary of one decision, and real ones have
//! a handful of items. The limits are there so that no request, however
//! large, can exhaust a shared resource of the server (PostgreSQL's lock
//! table, SQLite's statement limits, a worker's memory) or make other
//! requests fail: a query over them is refused with
//! [`StoreError::QueryTooLarge`](crate::StoreError::QueryTooLarge), which
//! names the limit, and nothing is read or written. Every query within them
//! works on every backend.
//!
//! | limit | default |
//! |---|---|
//! | items per query ([`QueryLimits::max_items`]) | 10,000 |
//! | event types per item ([`QueryLimits::max_types_per_item`]) | 100 |
//! | tags per item ([`QueryLimits::max_tags_per_item`]) | 100 |
//! | bytes of names, predicates and their values ([`QueryLimits::max_bytes`]) | 1 MiB |
//!
//! Each store takes its limits from its options (`with_query_limits` on
//! every backend); the defaults are [`QueryLimits::default`].

use std::fmt;

use thiserror::Error;

use crate::position::AppendCondition;
use crate::query::{PredicateValue, Query};
use crate::store::{AppendRequest, DecisionScope};

/// The most one query may ask for; see the [module docs](self).
///
/// ```
/// use factos::{EventType, Query, QueryItem, QueryLimit, QueryLimits};
/// let limits = QueryLimits { max_items: 2, ..QueryLimits::default() };
/// let item = QueryItem::types([EventType::new("Sold")?]);
/// assert!(limits.check(&Query::new([item.clone(), item.clone()])).is_ok());
/// let refused = limits.check(&Query::new([item.clone(), item.clone(), item]));
/// assert_eq!(refused.map_err(|e| e.limit), Err(QueryLimit::Items));
/// # Ok::<(), factos::InvalidName>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryLimits {
    /// Items per query.
    pub max_items: usize,
    /// Event types in one item.
    pub max_types_per_item: usize,
    /// Tags in one item.
    pub max_tags_per_item: usize,
    /// Bytes of the query's event types, tags, SQL predicates and their
    /// text values, added up.
    pub max_bytes: usize,
}

impl QueryLimits {
    /// The defaults: 10,000 items, 100 types and 100 tags per item, 1 MiB.
    pub const DEFAULT: QueryLimits = QueryLimits {
        max_items: 10_000,
        max_types_per_item: 100,
        max_tags_per_item: 100,
        max_bytes: 1 << 20,
    };

    /// Checks `query` against the limits.
    ///
    /// # Errors
    ///
    /// [`QueryTooLarge`] naming the first limit exceeded.
    pub fn check(&self, query: &Query) -> Result<(), QueryTooLarge> {
        let refuse = |limit, allowed, found| Err(QueryTooLarge { limit, allowed, found });
        if query.items().len() > self.max_items {
            return refuse(QueryLimit::Items, self.max_items, query.items().len());
        }
        let mut bytes = 0usize;
        for item in query.items() {
            if item.event_types().len() > self.max_types_per_item {
                return refuse(
                    QueryLimit::TypesPerItem,
                    self.max_types_per_item,
                    item.event_types().len(),
                );
            }
            if item.required_tags().len() > self.max_tags_per_item {
                return refuse(
                    QueryLimit::TagsPerItem,
                    self.max_tags_per_item,
                    item.required_tags().len(),
                );
            }
            bytes += item.event_types().iter().map(|t| t.as_str().len()).sum::<usize>();
            bytes += item.required_tags().iter().map(|t| t.as_str().len()).sum::<usize>();
            if let Some(predicate) = item.predicate() {
                bytes += predicate.sql().len();
                bytes += predicate
                    .params()
                    .iter()
                    .map(|p| match p {
                        PredicateValue::Text(text) => text.len(),
                        PredicateValue::Integer(_) => 8,
                    })
                    .sum::<usize>();
            }
        }
        if bytes > self.max_bytes {
            return refuse(QueryLimit::Bytes, self.max_bytes, bytes);
        }
        Ok(())
    }

    /// Checks the query of a decision's scope (a stream scope has none).
    ///
    /// # Errors
    ///
    /// As [`QueryLimits::check`].
    pub fn check_scope(&self, scope: &DecisionScope) -> Result<(), QueryTooLarge> {
        match scope {
            DecisionScope::Query(query) => self.check(query),
            DecisionScope::Stream(_) => Ok(()),
        }
    }

    /// Checks the query of an append's condition, if it has one.
    ///
    /// # Errors
    ///
    /// As [`QueryLimits::check`].
    pub fn check_append(&self, request: &AppendRequest) -> Result<(), QueryTooLarge> {
        match &request.condition {
            Some(AppendCondition { query, .. }) => self.check(query),
            None => Ok(()),
        }
    }
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Which of the [`QueryLimits`] a query exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QueryLimit {
    /// [`QueryLimits::max_items`].
    Items,
    /// [`QueryLimits::max_types_per_item`].
    TypesPerItem,
    /// [`QueryLimits::max_tags_per_item`].
    TagsPerItem,
    /// [`QueryLimits::max_bytes`].
    Bytes,
}

impl fmt::Display for QueryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueryLimit::Items => "items per query",
            QueryLimit::TypesPerItem => "event types per query item",
            QueryLimit::TagsPerItem => "tags per query item",
            QueryLimit::Bytes => "bytes per query",
        })
    }
}

/// A query over one of the store's [`QueryLimits`]; nothing was read or
/// written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("query too large: {found} {limit}, the store allows at most {allowed}")]
pub struct QueryTooLarge {
    /// The limit exceeded.
    pub limit: QueryLimit,
    /// What the limit allows.
    pub allowed: usize,
    /// What the query has.
    pub found: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventType, Predicate, QueryItem, Tag};

    fn tags(n: usize) -> Vec<Tag> {
        (0..n).map(|i| Tag::new(format!("t{i}")).expect("tag")).collect()
    }

    #[test]
    fn each_limit_is_named_with_what_it_allows_and_what_was_found() {
        let limits = QueryLimits {
            max_items: 3,
            max_types_per_item: 2,
            max_tags_per_item: 2,
            max_bytes: 10,
        };
        let types: Vec<EventType> = ["A", "B", "C"]
            .iter()
            .map(|t| EventType::new(*t).expect("type"))
            .collect();
        let over = |q: Query| limits.check(&q).err().map(|e| (e.limit, e.allowed, e.found));
        assert_eq!(
            over(Query::new(vec![QueryItem::new(); 4])),
            Some((QueryLimit::Items, 3, 4))
        );
        assert_eq!(
            over(Query::from(QueryItem::types(types))),
            Some((QueryLimit::TypesPerItem, 2, 3))
        );
        assert_eq!(
            over(Query::from(QueryItem::tags(tags(3)))),
            Some((QueryLimit::TagsPerItem, 2, 3))
        );
        let long = QueryItem::new().with_predicate(Predicate::new("data = $1", [PredicateValue::Text("xy".into())]));
        assert_eq!(over(Query::from(long)), Some((QueryLimit::Bytes, 10, 11)));
        assert_eq!(over(Query::from(QueryItem::tags(tags(2)))), None);
        let refused = limits.check(&Query::new(vec![QueryItem::new(); 4])).err();
        assert_eq!(
            refused.map(|e| e.to_string()).as_deref(),
            Some("query too large: 4 items per query, the store allows at most 3")
        );
    }
}
