//! SQL for queries: which positions match a [`Query`] within bounds.
//!
//! Every value is a parameter; tags and types never become SQL text. Each
//! query item becomes an index scan: tag items on `event_tags (tag,
//! position)`, type-only items on `events (event_type, position)`. The
//! position bounds are pushed into every scan so a condition check reads
//! only the events after the decision's position.

use factos::{Query, QueryItem};
use rusqlite::types::Value;

/// Inclusive position bounds.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Bounds {
    pub(crate) min: Option<i64>,
    pub(crate) max: Option<i64>,
}

impl Bounds {
    fn push(&self, sql: &mut String, params: &mut Vec<Value>) {
        if let Some(min) = self.min {
            sql.push_str(" AND position >= ?");
            params.push(Value::Integer(min));
        }
        if let Some(max) = self.max {
            sql.push_str(" AND position <= ?");
            params.push(Value::Integer(max));
        }
    }
}

/// A boolean SQL expression over `events` selecting the rows that match
/// `query` within `bounds`; its parameters are appended to `params`.
pub(crate) fn matching(query: &Query, bounds: Bounds, params: &mut Vec<Value>) -> String {
    let mut sql = String::from("1");
    bounds.push(&mut sql, params);
    if query.matches_all() {
        return sql;
    }
    sql.push_str(" AND position IN (");
    for (i, item) in query.items().iter().enumerate() {
        if i > 0 {
            sql.push_str(" UNION ");
        }
        item_positions(item, bounds, &mut sql, params);
    }
    sql.push(')');
    sql
}

fn item_positions(item: &QueryItem, bounds: Bounds, sql: &mut String, params: &mut Vec<Value>) {
    let types = |sql: &mut String, params: &mut Vec<Value>| {
        if !item.event_types().is_empty() {
            sql.push_str(" AND event_type IN (");
            for (i, event_type) in item.event_types().iter().enumerate() {
                sql.push_str(if i == 0 { "?" } else { ", ?" });
                params.push(Value::Text(event_type.as_str().to_owned()));
            }
            sql.push(')');
        }
    };
    if item.required_tags().is_empty() {
        sql.push_str("SELECT position FROM events WHERE 1");
        types(sql, params);
        bounds.push(sql, params);
        return;
    }
    // Compound SELECTs associate left to right in SQLite, so the
    // intersection of an item's tags is wrapped before it joins the union.
    sql.push_str("SELECT position FROM (");
    for (i, tag) in item.required_tags().iter().enumerate() {
        if i > 0 {
            sql.push_str(" INTERSECT ");
        }
        sql.push_str("SELECT position FROM event_tags WHERE tag = ?");
        params.push(Value::Text(tag.as_str().to_owned()));
        types(sql, params);
        bounds.push(sql, params);
    }
    sql.push(')');
}
