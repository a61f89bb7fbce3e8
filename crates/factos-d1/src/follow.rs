//! Following the log on D1: the follow contract (by polling), checkpoints
//! and parked effects (the SQLite backend's tables and statements).
//!
//! D1 is one SQLite database written by one writer, so positions are
//! assigned in commit order and a follower's cursor is the position of the
//! last event it examined: nothing can appear below it later. A read
//! after a cursor takes the next window of at most `limit` events (its
//! last position and size), then the matching events inside it. A worker
//! has no way to be told of another request's commit, so a waiting
//! follower polls every [`D1Store::with_poll_interval`]; appends through
//! the same store wake it at once.

use factos::{
    Cursor, EffectKey, EventId, FollowBatch, LocalCheckpoints, LocalFollow, ParkedEffect, Position, Query, StoreError,
    deliver_in_position_order,
};
use factos_sql::Bounds;
use futures_util::future::{Either, select};
use serde::Deserialize;

use crate::error::D1Error;
use crate::read::{COLUMNS, push_filter, rows, to_sql};
use crate::statement::{Arg, Statement};
use crate::store::D1Store;

#[derive(Debug, Deserialize)]
struct Window {
    end: Option<i64>,
    examined: i64,
}

impl LocalFollow for D1Store {
    async fn read_after(&self, query: &Query, after: Option<Cursor>, limit: usize) -> Result<FollowBatch, StoreError> {
        self.query_limits().check(query)?;
        let from = after.map(|c| to_sql(c.position())).transpose()?.unwrap_or(0);
        let mut window = Statement::new(factos_sql::sqlite_dialect::WINDOW_END);
        window.args = vec![Arg::Int(from), Arg::Int(i64::try_from(limit).unwrap_or(i64::MAX))];
        let found: Option<Window> = window
            .prepare(self.db(), "read_after")?
            .first(None)
            .await
            .map_err(|e| D1Error::d1("read_after", e))?;
        let Some(Window {
            end: Some(end),
            examined,
        }) = found
        else {
            return Ok(FollowBatch::default());
        };
        let mut events = Statement::new(format!("SELECT {COLUMNS} FROM events WHERE "));
        push_filter(
            &mut events,
            query,
            Bounds {
                min: Some(from + 1),
                max: Some(end),
            },
        )?;
        events.push(" ORDER BY position");
        let events = rows(self.db(), &events, "read_after").await?;
        Ok(FollowBatch {
            events: deliver_in_position_order(events.into_iter().map(|(record, _)| record).collect()),
            end: Some(Cursor::new(0, Position::new(u64::try_from(end).unwrap_or(0)))),
            examined: usize::try_from(examined).unwrap_or(0),
        })
    }

    fn commit_count(&self) -> u64 {
        self.commits().count()
    }

    async fn commit_mark(&self) -> Result<u64, StoreError> {
        // Every committed event is readable at once.
        Ok(0)
    }

    async fn settled(&self, _mark: u64) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn wait_for_commit(&self, seen: u64) {
        let commit = std::pin::pin!(self.commits().changed_since(seen));
        let poll = worker::Delay::from(self.poll_interval());
        match select(commit, poll).await {
            Either::Left(((), _)) | Either::Right(((), _)) => {}
        }
    }
}

#[derive(Debug, Deserialize)]
struct SavedCursor {
    cursor: String,
}

#[derive(Debug, Deserialize)]
struct SavedParked {
    #[serde(with = "serde_bytes")]
    event_id: Vec<u8>,
    effect_index: i64,
    cursor: String,
    attempts: i64,
    error: String,
    retry_requested: i64,
}

impl SavedParked {
    fn into_parked(self, runner: &str) -> Result<ParkedEffect, StoreError> {
        let id: [u8; 16] = self
            .event_id
            .try_into()
            .map_err(|_| corrupt("a parked effect's event id is not 16 bytes".into()))?;
        let number = |value: i64| u32::try_from(value).map_err(|_| corrupt(format!("{value} out of range")));
        Ok(ParkedEffect {
            runner: runner.to_owned(),
            key: EffectKey {
                event: EventId::from_bytes(id),
                index: number(self.effect_index)?,
            },
            cursor: self
                .cursor
                .parse()
                .map_err(|e: factos::InvalidCursor| corrupt(e.to_string()))?,
            attempts: number(self.attempts)?,
            error: self.error,
            retry_requested: self.retry_requested != 0,
        })
    }
}

fn corrupt(reason: String) -> StoreError {
    D1Error::CorruptRow { position: 0, reason }.into()
}

async fn run(store: &D1Store, statement: &Statement, during: &'static str) -> Result<(), StoreError> {
    statement
        .prepare(store.db(), during)?
        .run()
        .await
        .map_err(|e| D1Error::d1(during, e))?;
    Ok(())
}

/// Runs `statement`: whether it changed a row.
async fn changed(store: &D1Store, statement: &Statement, during: &'static str) -> Result<bool, StoreError> {
    let result = statement
        .prepare(store.db(), during)?
        .run()
        .await
        .map_err(|e| D1Error::d1(during, e))?;
    let meta = result.meta().map_err(|e| D1Error::d1(during, e))?;
    Ok(meta.and_then(|m| m.changes).unwrap_or(0) > 0)
}

impl LocalCheckpoints for D1Store {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Cursor>, StoreError> {
        let mut statement = Statement::new(factos_sql::sqlite_dialect::LOAD_CHECKPOINT);
        statement.args = vec![Arg::Text(name.to_owned())];
        let saved: Option<SavedCursor> = statement
            .prepare(self.db(), "load_checkpoint")?
            .first(None)
            .await
            .map_err(|e| D1Error::d1("load_checkpoint", e))?;
        saved
            .map(|s| {
                s.cursor
                    .parse()
                    .map_err(|e: factos::InvalidCursor| corrupt(e.to_string()))
            })
            .transpose()
    }

    async fn save_checkpoint(&self, name: &str, cursor: Cursor) -> Result<(), StoreError> {
        let mut statement = Statement::new(factos_sql::sqlite_dialect::SAVE_CHECKPOINT);
        statement.args = vec![
            Arg::Text(name.to_owned()),
            Arg::Text(cursor.to_string()),
            Arg::Int(D1Store::now()),
        ];
        run(self, &statement, "save_checkpoint").await
    }

    async fn park_effect(&self, parked: ParkedEffect) -> Result<(), StoreError> {
        let mut statement = Statement::new(factos_sql::sqlite_dialect::PARK_EFFECT);
        statement.args = vec![
            Arg::Text(parked.runner),
            Arg::Blob(parked.key.event.as_bytes().to_vec()),
            Arg::Int(i64::from(parked.key.index)),
            Arg::Int(to_sql(parked.cursor.position())?),
            Arg::Int(i64::from(parked.attempts)),
            Arg::Text(parked.error),
            Arg::Int(D1Store::now()),
            Arg::Text(parked.cursor.to_string()),
        ];
        run(self, &statement, "park_effect").await
    }

    async fn parked_effects(&self, runner: &str) -> Result<Vec<ParkedEffect>, StoreError> {
        let mut statement = Statement::new(factos_sql::sqlite_dialect::PARKED_EFFECTS);
        statement.args = vec![Arg::Text(runner.to_owned())];
        let result = statement
            .prepare(self.db(), "parked_effects")?
            .all()
            .await
            .map_err(|e| D1Error::d1("parked_effects", e))?;
        let rows: Vec<SavedParked> = result.results().map_err(|e| D1Error::d1("parked_effects", e))?;
        rows.into_iter().map(|row| row.into_parked(runner)).collect()
    }

    async fn retry_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        let mut statement = Statement::new(factos_sql::sqlite_dialect::RETRY_PARKED);
        statement.args = vec![
            Arg::Text(runner.to_owned()),
            Arg::Blob(key.event.as_bytes().to_vec()),
            Arg::Int(i64::from(key.index)),
            Arg::Int(D1Store::now()),
        ];
        changed(self, &statement, "retry_parked").await
    }

    async fn discard_parked(&self, runner: &str, key: EffectKey) -> Result<bool, StoreError> {
        let mut statement = Statement::new(factos_sql::sqlite_dialect::DISCARD_PARKED);
        statement.args = vec![
            Arg::Text(runner.to_owned()),
            Arg::Blob(key.event.as_bytes().to_vec()),
            Arg::Int(i64::from(key.index)),
        ];
        changed(self, &statement, "discard_parked").await
    }
}
