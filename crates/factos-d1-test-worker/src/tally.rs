//! The tally read model of the projection cases as a `D1Projection`.

use factos::{BoxError, Delivered, Projection, Query, StoredEvent};
use factos_d1::D1Projection;
use factos_d1::worker::wasm_bindgen::JsValue;
use factos_d1::worker::{D1Database, D1PreparedStatement};

/// The conformance suite's tally SQL, this very file (the suite itself
/// does not compile to WebAssembly).
#[path = "../../factos-conformance/src/tally_sql.rs"]
pub(crate) mod tally_sql;

/// Counts events per tag in `tallies`; fails on a poisoned event when
/// `refuse_poison`.
pub(crate) struct Tally {
    pub(crate) refuse_poison: bool,
}

impl Projection for Tally {
    type Event = StoredEvent;
    fn name(&self) -> &str {
        "tally"
    }
    fn query(&self) -> Query {
        Query::all()
    }
}

impl D1Projection for Tally {
    fn statements(
        &mut self,
        db: &D1Database,
        events: &[Delivered<StoredEvent>],
    ) -> Result<Vec<D1PreparedStatement>, BoxError> {
        let mut statements = vec![db.prepare(tally_sql::CREATE)];
        for tag in tally_sql::tags_to_count(events, self.refuse_poison)? {
            statements.push(db.prepare(tally_sql::COUNT).bind(&[JsValue::from_str(&tag)])?);
        }
        Ok(statements)
    }

    fn reset(&mut self, db: &D1Database) -> Result<Vec<D1PreparedStatement>, BoxError> {
        Ok(vec![db.prepare(tally_sql::DROP)])
    }
}
