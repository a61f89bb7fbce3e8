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
//! let filter = matching(&query, Bounds { min: Some(5), max: None }, Dialect::Postgres, &mut params)?;
//! assert!(filter.contains("FROM event_tags WHERE tag = $2"));
//! assert_eq!(params[1], SqlValue::Text("concert:1".into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod predicate;
pub mod row;
pub mod sqlite_dialect;

use factos::{InvalidPredicate, Predicate, PredicateValue, Query, QueryItem};

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

/// Parameter `number` as `dialect` writes it.
fn placeholder(dialect: Dialect, number: usize) -> String {
    match dialect {
        Dialect::Sqlite => format!("?{number}"),
        Dialect::Postgres => format!("${number}"),
    }
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
        let placeholder = placeholder(self.dialect, number);
        self.sql.push_str(&placeholder);
    }

    /// Appends `AND (predicate)` with the predicate's `$k` placeholders
    /// renumbered after the parameters already bound, once the predicate is
    /// known to be one expression (see [`predicate`]).
    fn predicate(&mut self, predicate: &Predicate) -> Result<(), InvalidPredicate> {
        let offset = self.params.len();
        let dialect = self.dialect;
        let rendered = predicate::render(predicate, dialect, |k| placeholder(dialect, offset + k))?;
        self.params.extend(predicate.params().iter().map(SqlValue::from));
        self.sql.push_str(" AND (");
        self.sql.push_str(&rendered);
        self.sql.push(')');
        Ok(())
    }

    fn bounds(&mut self, bounds: Bounds) {
        self.bounds_of("", bounds);
    }

    /// The bounds on the `position` column of the table aliased `alias`
    /// (`"t."`, or `""` for the only one).
    fn bounds_of(&mut self, alias: &str, bounds: Bounds) {
        if let Some(min) = bounds.min {
            self.sql.push_str(&format!(" AND {alias}position >= "));
            self.param(SqlValue::Integer(min));
        }
        if let Some(max) = bounds.max {
            self.sql.push_str(&format!(" AND {alias}position <= "));
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
    fn item(&mut self, item: &QueryItem, bounds: Bounds) -> Result<(), InvalidPredicate> {
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
                self.predicate(predicate)?;
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
        Ok(())
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

/// Queries with more non-predicate items than this, or whose items would
/// bind more parameters than [`EXPANDED_PARAMS`], are written in the compact
/// shape (see [`matching`]).
pub const EXPANDED_ITEMS: usize = 8;

/// See [`EXPANDED_ITEMS`].
pub const EXPANDED_PARAMS: usize = 32;

/// A boolean SQL expression over `events` that selects the rows matching
/// `query` within `bounds`, with its parameters appended to `params`
/// (placeholders are numbered after any parameters already there).
///
/// A small query is written out: each item becomes index range scans (tag
/// items on `event_tags (tag, position)`, type-only items on
/// `events (event_type, position)`) joined by `UNION`, with the position
/// bounds pushed into every scan, so a condition check reads only events
/// after the decision's position.
///
/// A large one (more than [`EXPANDED_ITEMS`] items without a predicate, or
/// more than [`EXPANDED_PARAMS`] of their values) is written in a compact
/// shape whose size does not grow with the query: the tag items travel as
/// one JSON parameter that the statement walks (`json_each`,
/// `jsonb_array_elements`), each item one probe of the tag index by its
/// first tag, and the type-only items' types as another. So no query
/// within [`factos::QueryLimits`] reaches a SQL engine's statement limits
/// (SQLite's 500 compound-SELECT terms, its expression depth, bound
/// parameters; PostgreSQL's 65,535 parameters; D1's 100). Items with a SQL
/// predicate stay one term each.
///
/// # Errors
///
/// [`InvalidPredicate`] when an item's SQL predicate is not exactly one
/// expression of `dialect` using only its own parameters; then `params` may
/// hold some of the query's values and the statement must not run.
pub fn matching(
    query: &Query,
    bounds: Bounds,
    dialect: Dialect,
    params: &mut Vec<SqlValue>,
) -> Result<String, InvalidPredicate> {
    let mut b = Builder {
        sql: String::from("TRUE"),
        dialect,
        params,
    };
    b.bounds(bounds);
    if query.matches_all() {
        return Ok(b.sql);
    }
    b.sql.push_str(" AND position IN (");
    if is_large(query) {
        b.compact(query, bounds)?;
    } else {
        let mut terms = 0;
        for item in query.items() {
            b.union(&mut terms);
            b.item(item, bounds)?;
        }
    }
    b.sql.push(')');
    Ok(b.sql)
}

/// Whether `query` is written in the compact shape.
fn is_large(query: &Query) -> bool {
    let plain = query.items().iter().filter(|item| item.predicate().is_none());
    let (items, values) = plain.fold((0, 0), |(items, values), item| {
        let item_values = item.event_types().len() * item.required_tags().len().max(1) + item.required_tags().len();
        (items + 1, values + item_values)
    });
    items > EXPANDED_ITEMS || values > EXPANDED_PARAMS
}

impl Builder<'_> {
    /// Starts the next of the `terms` joined by `UNION`.
    fn union(&mut self, terms: &mut usize) {
        if *terms > 0 {
            self.sql.push_str(" UNION ");
        }
        *terms += 1;
    }

    /// The compact shape of [`matching`]: one term for the tag items, one
    /// for the type-only items, one per item with a predicate.
    fn compact(&mut self, query: &Query, bounds: Bounds) -> Result<(), InvalidPredicate> {
        let mut tagged = Vec::new();
        let mut types = std::collections::BTreeSet::new();
        let mut terms = 0;
        for item in query.items() {
            if item.predicate().is_some() {
                self.union(&mut terms);
                self.item(item, bounds)?;
            } else if item.required_tags().is_empty() {
                types.extend(item.event_types().iter().map(|t| t.as_str()));
            } else {
                let names = |set: Vec<&str>| serde_json::Value::from(set);
                tagged.push(serde_json::Value::Array(vec![
                    names(item.event_types().iter().map(|t| t.as_str()).collect()),
                    names(item.required_tags().iter().map(|t| t.as_str()).collect()),
                ]));
            }
        }
        if !tagged.is_empty() {
            self.union(&mut terms);
            let json = serde_json::Value::Array(tagged).to_string();
            self.tag_items(json, bounds);
        }
        if !types.is_empty() {
            self.union(&mut terms);
            let json = serde_json::Value::from(types.into_iter().collect::<Vec<_>>()).to_string();
            self.type_items(json, bounds);
        }
        Ok(())
    }

    /// The positions of the events matching any of the tag items in
    /// `json` (`[[types], [tags]]` each): a probe of the tag index by the
    /// item's first tag, its types, and a count of its other tags.
    fn tag_items(&mut self, json: String, bounds: Bounds) {
        match self.dialect {
            Dialect::Sqlite => {
                self.sql.push_str("SELECT t.position FROM json_each(");
                self.param(SqlValue::Text(json));
                self.sql.push_str(
                    ") AS i CROSS JOIN event_tags AS t ON t.tag = json_extract(i.value, '$[1][0]') \
                     WHERE (json_array_length(i.value, '$[0]') = 0 \
                     OR t.event_type IN (SELECT value FROM json_each(i.value, '$[0]'))) \
                     AND json_array_length(i.value, '$[1]') = (SELECT count(*) FROM json_each(i.value, '$[1]') AS g \
                     JOIN event_tags AS u ON u.tag = g.value AND u.position = t.position)",
                );
            }
            Dialect::Postgres => {
                self.sql.push_str("SELECT t.position FROM jsonb_array_elements(");
                self.param(SqlValue::Text(json));
                self.sql.push_str(
                    "::jsonb) AS i(v) JOIN event_tags AS t ON t.tag = i.v->1->>0 \
                     WHERE (jsonb_array_length(i.v->0) = 0 \
                     OR t.event_type IN (SELECT jsonb_array_elements_text(i.v->0))) \
                     AND jsonb_array_length(i.v->1) = (SELECT count(*) FROM jsonb_array_elements_text(i.v->1) AS g(tag) \
                     JOIN event_tags AS u ON u.tag = g.tag AND u.position = t.position)",
                );
            }
        }
        self.bounds_of("t.", bounds);
    }

    /// The positions of the events of any of the types in `json`.
    fn type_items(&mut self, json: String, bounds: Bounds) {
        self.sql
            .push_str("SELECT position FROM events WHERE event_type IN (SELECT ");
        match self.dialect {
            Dialect::Sqlite => {
                self.sql.push_str("value FROM json_each(");
                self.param(SqlValue::Text(json));
                self.sql.push(')');
            }
            Dialect::Postgres => {
                self.sql.push_str("jsonb_array_elements_text(");
                self.param(SqlValue::Text(json));
                self.sql.push_str("::jsonb)");
            }
        }
        self.sql.push(')');
        self.bounds(bounds);
    }
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
    fn match_all_is_only_bounds() -> Result<(), InvalidPredicate> {
        let mut params = Vec::new();
        let sql = matching(
            &Query::all(),
            Bounds {
                min: Some(3),
                max: Some(9),
            },
            Dialect::Sqlite,
            &mut params,
        )?;
        assert_eq!(sql, "TRUE AND position >= ?1 AND position <= ?2");
        assert_eq!(params, vec![SqlValue::Integer(3), SqlValue::Integer(9)]);
        Ok(())
    }

    #[test]
    fn numbered_placeholders_continue_after_existing_parameters() -> Result<(), Box<dyn std::error::Error>> {
        let mut params = vec![SqlValue::Text("already".into())];
        let query = Query::new([item(&["A", "B"], &["x", "y"])?, item(&["C"], &[])?]);
        let sql = matching(&query, Bounds::default(), Dialect::Postgres, &mut params)?;
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
    fn tags_are_parameters_never_sql() -> Result<(), Box<dyn std::error::Error>> {
        let mut params = Vec::new();
        let sql = matching(
            &Query::from(item(&[], &["'; DROP TABLE events; --"])?),
            Bounds::default(),
            Dialect::Sqlite,
            &mut params,
        )?;
        assert!(!sql.contains("DROP"));
        assert_eq!(params, vec![SqlValue::Text("'; DROP TABLE events; --".into())]);
        Ok(())
    }

    #[test]
    fn predicate_parameters_are_renumbered_after_the_others() -> Result<(), Box<dyn std::error::Error>> {
        let predicate = Predicate::new(
            "json_extract(data, '$.day') = $2 AND note <> '$x' AND $1 > 0",
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
        )?;
        assert_eq!(
            sql,
            "TRUE AND position >= ?1 AND position IN (SELECT position FROM events WHERE TRUE AND event_type IN (?2) \
             AND position IN (SELECT position FROM event_tags WHERE tag = ?3 AND event_type IN (?4) AND position >= ?5) \
             AND (json_extract(data, '$.day') = ?7 AND note <> '$x' AND ?6 > 0) AND position >= ?8)"
        );
        assert_eq!(params[5], SqlValue::Integer(7));
        assert_eq!(params[6], SqlValue::Text("d".into()));
        Ok(())
    }

    #[test]
    fn an_escaping_predicate_is_refused_before_any_sql_is_built() -> Result<(), factos::InvalidName> {
        let escaping = Predicate::new("1=1) OR (1=1", []);
        let query = Query::from(item(&["A"], &["x"])?.with_predicate(escaping));
        let mut params = Vec::new();
        let refused = matching(&query, Bounds::default(), Dialect::Postgres, &mut params);
        assert_eq!(refused.map_err(|e| e.sql).err().as_deref(), Some("1=1) OR (1=1"));
        Ok(())
    }
}
