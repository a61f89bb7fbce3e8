//! SQL statements with their arguments, built without touching JavaScript
//! (so they can be built and checked natively) and bound when they run.

use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

use crate::error::D1Error;

/// How many parameters D1 binds in one statement.
pub(crate) const MAX_PARAMS: usize = 100;

/// One argument of a statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    /// An integer; D1 carries numbers as JavaScript doubles, so every one
    /// factos binds stays below 2^53 (positions, revisions, microseconds).
    Int(i64),
    Text(String),
    Null,
    Blob(Vec<u8>),
}

impl Arg {
    fn to_js(&self) -> JsValue {
        match self {
            // Exact below 2^53, which positions, revisions and times are.
            Arg::Int(value) => JsValue::from_f64(*value as f64),
            Arg::Text(text) => JsValue::from_str(text),
            Arg::Null => JsValue::NULL,
            Arg::Blob(bytes) => js_sys::Uint8Array::from(bytes.as_slice()).buffer().into(),
        }
    }
}

/// A statement and its arguments, numbered `?1`, `?2`, … in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Statement {
    pub(crate) sql: String,
    pub(crate) args: Vec<Arg>,
}

impl Statement {
    pub(crate) fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    /// Appends `text` to the SQL.
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.sql.push_str(text);
        self
    }

    /// Binds `arg` and writes its placeholder.
    pub(crate) fn arg(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        let placeholder = format!("?{}", self.args.len());
        self.sql.push_str(&placeholder);
        self
    }

    /// The statement, prepared on `db` with its arguments bound.
    pub(crate) fn prepare(&self, db: &D1Database, during: &'static str) -> Result<D1PreparedStatement, D1Error> {
        let args: Vec<JsValue> = self.args.iter().map(Arg::to_js).collect();
        db.prepare(self.sql.as_str())
            .bind(&args)
            .map_err(|e| D1Error::d1(during, e))
    }
}
