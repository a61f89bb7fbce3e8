//! SQL shared by the factos SQL backends (SQLite, PostgreSQL, Cloudflare D1).
//!
//! Every SQL backend stores tags the same way: one row per (tag, event) in
//! an `event_tags (tag, position, event_type)` table keyed by
//! `(tag, position)`, and events in an `events` table indexed by
//! `(event_type, position)`. [`matching`] turns a [`Query`] into a filter
//! over `events` that each backend's driver runs with its own parameter
//! type; only the placeholder syntax differs between dialects.
//!
//! All values are parameters: tags and types never become SQL text.
//!
//! ```
//! use factos::{EventType, Query, QueryItem, Tag};
//! use factos_sql::{Bounds, Dialect, SqlValue, matching};
//!
//! let query = Query::from(QueryItem::types([EventType::new("Sold")?]).with_tags([Tag::new("concert:1")?]));
//! let mut params = Vec::new();
//! let filter = matching(&query, Bounds { min: Some(5), max: None }, Dialect::Postgres, &mut params);
//! assert!(filter.contains("FROM event_tags WHERE tag = $2"));
//! assert_eq!(params[1], SqlValue::Text("concert:1".into()));
//! # Ok::<(), factos::InvalidName>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use factos::{Predicate, PredicateValue, Query, QueryItem};

/// A parameter value for the generated SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    /// A text value (tag, event type).
    Text(String),
    /// A 64-bit integer (position bound).
    Integer(i64),
}

/// How a dialect writes parameter placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `?1`, `?2`, … (SQLite, D1).
    Sqlite,
    /// `$1`, `$2`, … (PostgreSQL).
    Postgres,
}

impl From<&PredicateValue> for SqlValue {
    fn from(value: &PredicateValue) -> Self {
        match value {
            PredicateValue::Text(text) => SqlValue::Text(text.clone()),
            PredicateValue::Integer(integer) => SqlValue::Integer(*integer),
        }
    }
}

/// Inclusive position bounds pushed into every index scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bounds {
    /// Only positions `>= min`.
    pub min: Option<i64>,
    /// Only positions `<= max`.
    pub max: Option<i64>,
}

struct Builder<'p> {
    sql: String,
    dialect: Dialect,
    params: &'p mut Vec<SqlValue>,
}

impl Builder<'_> {
    fn param(&mut self, value: SqlValue) {
        self.params.push(value);
        self.placeholder(self.params.len());
    }

    fn placeholder(&mut self, number: usize) {
        self.sql.push(match self.dialect {
            Dialect::Sqlite => '?',
            Dialect::Postgres => '$',
        });
        self.sql.push_str(&number.to_string());
    }

    /// Appends `AND (predicate)` with the predicate's `$k` placeholders
    /// renumbered after the parameters already bound.
    fn predicate(&mut self, predicate: &Predicate) {
        let offset = self.params.len();
        let count = predicate.params().len();
        self.params.extend(predicate.params().iter().map(SqlValue::from));
        self.sql.push_str(" AND (");
        let sql = predicate.sql();
        let mut rest = sql;
        while let Some(dollar) = rest.find('$') {
            self.sql.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            match after[..digits].parse::<usize>() {
                Ok(k) if (1..=count).contains(&k) => self.placeholder(offset + k),
                // Not a parameter of this predicate: left for the database
                // to accept or reject.
                _ => {
                    self.sql.push('$');
                    self.sql.push_str(&after[..digits]);
                }
            }
            rest = &after[digits..];
        }
        self.sql.push_str(rest);
        self.sql.push(')');
    }

    fn bounds(&mut self, bounds: Bounds) {
        if let Some(min) = bounds.min {
            self.sql.push_str(" AND position >= ");
            self.param(SqlValue::Integer(min));
        }
        if let Some(max) = bounds.max {
            self.sql.push_str(" AND position <= ");
            self.param(SqlValue::Integer(max));
        }
    }

    fn types(&mut self, item: &QueryItem) {
        if item.event_types().is_empty() {
            return;
        }
        self.sql.push_str(" AND event_type IN (");
        for (i, event_type) in item.event_types().iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.param(SqlValue::Text(event_type.as_str().to_owned()));
        }
        self.sql.push(')');
    }

    /// The positions of the events matching `item`, as one SELECT.
    fn item(&mut self, item: &QueryItem, bounds: Bounds) {
        match item.predicate() {
            Some(predicate) => {
                // Filter the events themselves; the tags, if any, narrow
                // them through the tag index.
                self.sql.push_str("SELECT position FROM events WHERE TRUE");
                self.types(item);
                if !item.required_tags().is_empty() {
                    self.sql.push_str(" AND position IN (");
                    self.tag_intersection(item, bounds);
                    self.sql.push(')');
                }
                self.predicate(predicate);
                self.bounds(bounds);
            }
            None if item.required_tags().is_empty() => {
                self.sql.push_str("SELECT position FROM events WHERE TRUE");
                self.types(item);
                self.bounds(bounds);
            }
            None => {
                // Compound SELECTs associate left to right in SQLite, so an
                // item's tag intersection is wrapped before it joins the
                // union.
                self.sql.push_str("SELECT position FROM (");
                self.tag_intersection(item, bounds);
                self.sql.push_str(") AS item");
            }
        }
    }

    fn tag_intersection(&mut self, item: &QueryItem, bounds: Bounds) {
        for (i, tag) in item.required_tags().iter().enumerate() {
            if i > 0 {
                self.sql.push_str(" INTERSECT ");
            }
            self.sql.push_str("SELECT position FROM event_tags WHERE tag = ");
            self.param(SqlValue::Text(tag.as_str().to_owned()));
            self.types(item);
            self.bounds(bounds);
        }
    }
}

/// A boolean SQL expression over `events` that selects the rows matching
/// `query` within `bounds`, with its parameters appended to `params`
/// (placeholders are numbered after any parameters already there).
///
/// Each query item becomes index range scans (tag items on
/// `event_tags (tag, position)`, type-only items on
/// `events (event_type, position)`), and the position bounds are pushed into
/// every scan, so a condition check reads only events after the decision's
/// position.
pub fn matching(query: &Query, bounds: Bounds, dialect: Dialect, params: &mut Vec<SqlValue>) -> String {
    let mut b = Builder {
        sql: String::from("TRUE"),
        dialect,
        params,
    };
    b.bounds(bounds);
    if query.matches_all() {
        return b.sql;
    }
    b.sql.push_str(" AND position IN (");
    for (i, item) in query.items().iter().enumerate() {
        if i > 0 {
            b.sql.push_str(" UNION ");
        }
        b.item(item, bounds);
    }
    b.sql.push(')');
    b.sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use factos::{EventType, Tag};

    fn item(types: &[&str], tags: &[&str]) -> Result<QueryItem, factos::InvalidName> {
        Ok(QueryItem::types(
            types
                .iter()
                .map(|t| EventType::new(*t))
                .collect::<Result<Vec<_>, _>>()?,
        )
        .with_tags(tags.iter().map(|t| Tag::new(*t)).collect::<Result<Vec<_>, _>>()?))
    }

    #[test]
    fn match_all_is_only_bounds() {
        let mut params = Vec::new();
        let sql = matching(
            &Query::all(),
            Bounds {
                min: Some(3),
                max: Some(9),
            },
            Dialect::Sqlite,
            &mut params,
        );
        assert_eq!(sql, "TRUE AND position >= ?1 AND position <= ?2");
        assert_eq!(params, vec![SqlValue::Integer(3), SqlValue::Integer(9)]);
    }

    #[test]
    fn numbered_placeholders_continue_after_existing_parameters() -> Result<(), factos::InvalidName> {
        let mut params = vec![SqlValue::Text("already".into())];
        let query = Query::new([item(&["A", "B"], &["x", "y"])?, item(&["C"], &[])?]);
        let sql = matching(&query, Bounds::default(), Dialect::Postgres, &mut params);
        assert_eq!(
            sql,
            "TRUE AND position IN (SELECT position FROM (\
             SELECT position FROM event_tags WHERE tag = $2 AND event_type IN ($3, $4) INTERSECT \
             SELECT position FROM event_tags WHERE tag = $5 AND event_type IN ($6, $7)) AS item \
             UNION SELECT position FROM events WHERE TRUE AND event_type IN ($8))"
        );
        assert_eq!(params.len(), 8);
        Ok(())
    }

    #[test]
    fn tags_are_parameters_never_sql() -> Result<(), factos::InvalidName> {
        let mut params = Vec::new();
        let sql = matching(
            &Query::from(item(&[], &["'; DROP TABLE events; --"])?),
            Bounds::default(),
            Dialect::Sqlite,
            &mut params,
        );
        assert!(!sql.contains("DROP"));
        assert_eq!(params, vec![SqlValue::Text("'; DROP TABLE events; --".into())]);
        Ok(())
    }

    #[test]
    fn predicate_parameters_are_renumbered_after_the_others() -> Result<(), factos::InvalidName> {
        let predicate = Predicate::new(
            "json_extract(data, '$.day') = $2 AND note <> '$x' AND $1 > 0 AND $3 = 1",
            [PredicateValue::Integer(7), PredicateValue::Text("d".into())],
        );
        let query = Query::from(item(&["A"], &["x"])?.with_predicate(predicate));
        let mut params = Vec::new();
        let sql = matching(
            &query,
            Bounds {
                min: Some(4),
                max: None,
            },
            Dialect::Sqlite,
            &mut params,
        );
        assert_eq!(
            sql,
            "TRUE AND position >= ?1 AND position IN (SELECT position FROM events WHERE TRUE AND event_type IN (?2) \
             AND position IN (SELECT position FROM event_tags WHERE tag = ?3 AND event_type IN (?4) AND position >= ?5) \
             AND (json_extract(data, '$.day') = ?7 AND note <> '$x' AND ?6 > 0 AND $3 = 1) AND position >= ?8)"
        );
        assert_eq!(params[5], SqlValue::Integer(7));
        assert_eq!(params[6], SqlValue::Text("d".into()));
        Ok(())
    }
}
