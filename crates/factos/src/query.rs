//! Queries over store-visible metadata: the consistency boundary of a
//! decision.
//!
//! The semantics are exact and every backend must agree with [`Query::matches`]:
//!
//! 1. an empty query (no items) matches every event;
//! 2. items are OR-combined: an event matches if any item matches;
//! 3. inside an item, event types are OR-combined;
//! 4. inside an item, tags are AND-combined: the event carries all of them;
//! 5. an item without types matches any type;
//! 6. an item without tags matches any tags.

use std::collections::BTreeSet;
use std::fmt;

use crate::name::{EventType, Tag};

/// A set of event types (OR-combined) and a set of tags (AND-combined); see
/// [`Query`] for the full semantics. An item may also carry a backend-specific
/// SQL [`Predicate`] that further narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct QueryItem {
    types: BTreeSet<EventType>,
    tags: BTreeSet<Tag>,
    predicate: Option<Predicate>,
}

/// A value bound to a [`Predicate`] parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PredicateValue {
    /// Text.
    Text(String),
    /// A 64-bit integer.
    Integer(i64),
}

/// A boolean SQL expression over the `events` table that narrows a query
/// item, for values that were not written as tags: a JSON field of the
/// payload, a time window on `recorded_at`.
///
/// **A predicate ties the application to the backend whose SQL it is
/// written in** (the columns are the same everywhere, but functions differ:
/// `json_extract(data, '$.day')` in SQLite,
/// `(convert_from(data, 'UTF8')::jsonb ->> 'day')` in PostgreSQL). Stores
/// without SQL refuse queries that carry one
/// ([`crate::StoreError::UnsupportedQuery`],
/// [`crate::StoreError::UnsupportedCondition`]).
///
/// Values are always parameters, written `$1`, `$2`, … in the SQL and
/// numbered from 1 within the predicate; the backend renumbers them. Never
/// splice values into the SQL text.
///
/// The store evaluates the predicate; [`QueryItem::matches`] cannot and
/// checks the types and tags only.
///
/// ```
/// use factos::{Predicate, PredicateValue, QueryItem, EventType};
/// let today = QueryItem::types([EventType::new("Withdrawn")?])
///     .with_predicate(Predicate::new("json_extract(data, '$.day') = $1", [PredicateValue::Integer(20_415)]));
/// assert!(today.predicate().is_some());
/// # Ok::<(), factos::InvalidName>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Predicate {
    sql: String,
    params: Vec<PredicateValue>,
}

impl Predicate {
    /// A predicate with its parameters `$1`, `$2`, … in order.
    pub fn new(sql: impl Into<String>, params: impl IntoIterator<Item = PredicateValue>) -> Self {
        Self {
            sql: sql.into(),
            params: params.into_iter().collect(),
        }
    }

    /// The SQL expression.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The parameter values, `$1` first.
    pub fn params(&self) -> &[PredicateValue] {
        &self.params
    }
}

impl QueryItem {
    /// An item with no types and no tags, which matches every event.
    pub fn new() -> Self {
        Self::default()
    }

    /// An item matching events of any of `types`.
    pub fn types(types: impl IntoIterator<Item = EventType>) -> Self {
        Self::new().with_types(types)
    }

    /// An item matching events that carry all `tags`.
    pub fn tags(tags: impl IntoIterator<Item = Tag>) -> Self {
        Self::new().with_tags(tags)
    }

    /// Adds event types (OR-combined).
    pub fn with_types(mut self, types: impl IntoIterator<Item = EventType>) -> Self {
        self.types.extend(types);
        self
    }

    /// Adds tags (AND-combined).
    pub fn with_tags(mut self, tags: impl IntoIterator<Item = Tag>) -> Self {
        self.tags.extend(tags);
        self
    }

    /// The event types, in sorted order; empty means any type.
    pub fn event_types(&self) -> &BTreeSet<EventType> {
        &self.types
    }

    /// The required tags, in sorted order; empty means any tags.
    pub fn required_tags(&self) -> &BTreeSet<Tag> {
        &self.tags
    }

    /// Narrows the item with a backend-specific SQL predicate.
    pub fn with_predicate(mut self, predicate: Predicate) -> Self {
        self.predicate = Some(predicate);
        self
    }

    /// The item's SQL predicate, if any.
    pub fn predicate(&self) -> Option<&Predicate> {
        self.predicate.as_ref()
    }

    /// Whether an event of `event_type` carrying `tags` matches this item's
    /// types and tags (a [`Predicate`] is left to the store).
    pub fn matches(&self, event_type: &EventType, tags: &BTreeSet<Tag>) -> bool {
        (self.types.is_empty() || self.types.contains(event_type)) && self.tags.is_subset(tags)
    }
}

impl fmt::Display for QueryItem {
    /// `TicketSold|TicketRefunded with concert:42 & seat:7`; `any type`,
    /// `any tags` where the item does not restrict them; a predicate follows
    /// after `where`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.types.is_empty() {
            f.write_str("any type")?;
        }
        for (i, event_type) in self.types.iter().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            f.write_str(event_type.as_str())?;
        }
        for (i, tag) in self.tags.iter().enumerate() {
            f.write_str(if i == 0 { " with " } else { " & " })?;
            f.write_str(tag.as_str())?;
        }
        if let Some(predicate) = &self.predicate {
            write!(f, " where {}", predicate.sql)?;
        }
        Ok(())
    }
}

/// OR-combined [`QueryItem`]s: the consistency boundary of a decision.
///
/// The semantics are exact and every backend must agree with
/// [`Query::matches`]:
///
/// 1. an empty query (no items) matches every event;
/// 2. items are OR-combined: an event matches if any item matches;
/// 3. inside an item, event types are OR-combined;
/// 4. inside an item, tags are AND-combined: the event carries all of them;
/// 5. an item without types matches any type;
/// 6. an item without tags matches any tags.
///
/// ```
/// use std::collections::BTreeSet;
/// use factos::{EventType, Query, QueryItem, Tag};
///
/// let sold = EventType::new("TicketSold")?;
/// let concert = Tag::new("concert:42")?;
/// let query = Query::from(QueryItem::types([sold.clone()]).with_tags([concert.clone()]));
///
/// assert!(query.matches(&sold, &BTreeSet::from([concert, Tag::new("buyer:7")?])));
/// assert!(!query.matches(&sold, &BTreeSet::new()));
/// assert!(Query::all().matches(&sold, &BTreeSet::new()));
/// # Ok::<(), factos::InvalidName>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Query {
    items: Vec<QueryItem>,
}

impl fmt::Display for Query {
    /// `all events`, or the items in parentheses joined by `or`:
    /// `(TicketSold with concert:42) or (any type with venue:1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.items.is_empty() {
            return f.write_str("all events");
        }
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            write!(f, "({item})")?;
        }
        Ok(())
    }
}

impl Query {
    /// The query that matches every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// A query of the given items. No items means every event.
    pub fn new(items: impl IntoIterator<Item = QueryItem>) -> Self {
        Self {
            items: items.into_iter().collect(),
        }
    }

    /// Adds an item (OR-combined), builder style.
    ///
    /// Note that adding an item to [`Query::all`] narrows it: the empty query
    /// is "everything" only while it has no items. Use [`Query::union`] to
    /// combine queries by meaning.
    pub fn or(mut self, item: QueryItem) -> Self {
        self.items.push(item);
        self
    }

    /// The items, in the order they were added.
    pub fn items(&self) -> &[QueryItem] {
        &self.items
    }

    /// Whether this query matches every event (it has no items, or one item
    /// without types and tags).
    pub fn matches_all(&self) -> bool {
        self.items.is_empty()
            || self
                .items
                .iter()
                .any(|item| item.types.is_empty() && item.tags.is_empty() && item.predicate.is_none())
    }

    /// Whether any item carries a backend-specific SQL [`Predicate`].
    pub fn has_predicates(&self) -> bool {
        self.items.iter().any(|item| item.predicate.is_some())
    }

    /// Whether an event of `event_type` carrying `tags` matches (an item's
    /// [`Predicate`] is left to the store).
    pub fn matches(&self, event_type: &EventType, tags: &BTreeSet<Tag>) -> bool {
        self.items.is_empty() || self.items.iter().any(|item| item.matches(event_type, tags))
    }

    /// The query that matches exactly the events matched by `self` or by
    /// `other`.
    ///
    /// ```
    /// use factos::{EventType, Query, QueryItem};
    /// let a = Query::from(QueryItem::types([EventType::new("A")?]));
    /// assert!(a.clone().union(Query::all()).matches_all());
    /// assert_eq!(a.clone().union(a.clone()).items().len(), 1);
    /// # Ok::<(), factos::InvalidName>(())
    /// ```
    pub fn union(self, other: Query) -> Query {
        if self.matches_all() || other.matches_all() {
            return Query::all();
        }
        let mut items = self.items;
        for item in other.items {
            if !items.contains(&item) {
                items.push(item);
            }
        }
        Query { items }
    }
}

impl From<QueryItem> for Query {
    fn from(item: QueryItem) -> Self {
        Query { items: vec![item] }
    }
}

impl FromIterator<QueryItem> for Query {
    fn from_iter<I: IntoIterator<Item = QueryItem>>(iter: I) -> Self {
        Query::new(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ty(name: &str) -> EventType {
        EventType::new(name).expect("valid test type")
    }
    fn tag(name: &str) -> Tag {
        Tag::new(name).expect("valid test tag")
    }
    fn tags(names: &[&str]) -> BTreeSet<Tag> {
        names.iter().map(|n| tag(n)).collect()
    }

    #[test]
    fn queries_display_in_the_terms_of_the_semantics() {
        assert_eq!(Query::all().to_string(), "all events");
        let q = Query::new([
            QueryItem::types([ty("Sold"), ty("Refunded")]).with_tags([tag("concert:1"), tag("seat:2")]),
            QueryItem::tags([tag("venue:9")]),
            QueryItem::new(),
        ]);
        assert_eq!(
            q.to_string(),
            "(Refunded|Sold with concert:1 & seat:2) or (any type with venue:9) or (any type)"
        );
    }

    #[test]
    fn rule_1_empty_query_matches_everything() {
        assert!(Query::all().matches(&ty("A"), &tags(&[])));
        assert!(Query::all().matches(&ty("B"), &tags(&["x"])));
    }

    #[test]
    fn rule_2_items_are_or_combined() {
        let q = Query::new([QueryItem::types([ty("A")]), QueryItem::tags([tag("x")])]);
        assert!(q.matches(&ty("A"), &tags(&[])));
        assert!(q.matches(&ty("B"), &tags(&["x"])));
        assert!(!q.matches(&ty("B"), &tags(&["y"])));
    }

    #[test]
    fn rule_3_types_are_or_combined() {
        let q = Query::from(QueryItem::types([ty("A"), ty("B")]));
        assert!(q.matches(&ty("A"), &tags(&[])));
        assert!(q.matches(&ty("B"), &tags(&[])));
        assert!(!q.matches(&ty("C"), &tags(&[])));
    }

    #[test]
    fn rule_4_tags_are_and_combined() {
        let q = Query::from(QueryItem::tags([tag("x"), tag("y")]));
        assert!(q.matches(&ty("A"), &tags(&["x", "y", "z"])));
        assert!(!q.matches(&ty("A"), &tags(&["x"])));
    }

    #[test]
    fn rules_5_and_6_empty_parts_match_any() {
        assert!(Query::from(QueryItem::tags([tag("x")])).matches(&ty("Z"), &tags(&["x"])));
        assert!(Query::from(QueryItem::types([ty("A")])).matches(&ty("A"), &tags(&["q"])));
        assert!(Query::from(QueryItem::new()).matches(&ty("A"), &tags(&[])));
    }

    fn arb_item() -> impl Strategy<Value = QueryItem> {
        (
            proptest::collection::btree_set("[abc]", 0..3),
            proptest::collection::btree_set("[xyz]", 0..3),
        )
            .prop_map(|(t, g)| QueryItem::types(t.iter().map(|n| ty(n))).with_tags(g.iter().map(|n| tag(n))))
    }

    fn arb_query() -> impl Strategy<Value = Query> {
        proptest::collection::vec(arb_item(), 0..4).prop_map(Query::new)
    }

    proptest! {
        #[test]
        fn union_matches_exactly_either(
            a in arb_query(),
            b in arb_query(),
            t in "[abcd]",
            g in proptest::collection::btree_set("[xyzw]", 0..4),
        ) {
            let g: BTreeSet<Tag> = g.iter().map(|n| tag(n)).collect();
            let t = ty(&t);
            let either = a.matches(&t, &g) || b.matches(&t, &g);
            prop_assert_eq!(a.union(b).matches(&t, &g), either);
        }

        #[test]
        fn matches_all_agrees_with_matching(q in arb_query()) {
            // `matches_all` claims every event matches; an event with a type
            // and tags no generated item mentions must then match.
            if q.matches_all() {
                prop_assert!(q.matches(&ty("unused"), &BTreeSet::new()));
            }
        }
    }
}
