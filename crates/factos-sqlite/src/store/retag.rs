//! [`TagHistory`] for SQLite: staged tags and their publish are written by
//! the writer thread, like every write; a publish bumps the tag generation
//! that decisions check before they append, and drops every snapshot.

use factos::StoreError;
use factos::retag::{AddedTag, TagHistory};
use rusqlite::Connection;

use crate::error::SqliteError;
use crate::store::read::to_sql;
use crate::store::{SqliteStore, snapshot};

impl TagHistory for SqliteStore {
    async fn stage_tags(&self, name: &str, tags: Vec<AddedTag>) -> Result<(), StoreError> {
        let rows = tags
            .into_iter()
            .map(|(position, tag)| Ok((to_sql(position)?, tag)))
            .collect::<Result<Vec<_>, SqliteError>>()?;
        let name = name.to_owned();
        Ok(self
            .run_in_group(move |conn| {
                let mut stage = conn.prepare_cached(include_str!("../sql/retag/stage.sql"))?;
                for (position, tag) in &rows {
                    stage.execute(rusqlite::params![name, position, tag.as_str()])?;
                }
                Ok((true, ()))
            })
            .await?)
    }

    async fn publish_tags(&self, name: &str) -> Result<u64, StoreError> {
        let name = name.to_owned();
        let added = self.run_in_group(move |conn| Ok((true, publish(conn, &name)?))).await?;
        if added > 0 {
            // Followers' next reads see the tags: wake them like a commit.
            self.commits().bump();
        }
        Ok(added)
    }
}

/// Moves the tags staged under `name` into the tag index, in the writer's
/// transaction, and returns how many the events did not carry yet.
fn publish(conn: &Connection, name: &str) -> Result<u64, SqliteError> {
    let added = conn
        .prepare_cached(include_str!("../sql/retag/publish_added.sql"))?
        .execute([name])?;
    conn.prepare_cached(include_str!("../sql/retag/publish_index.sql"))?
        .execute([name])?;
    conn.prepare_cached(include_str!("../sql/retag/clear_staged.sql"))?
        .execute([name])?;
    if added > 0 {
        snapshot::retire_all(conn)?;
    }
    Ok(added as u64)
}

/// How many publishes added tags so far.
pub(crate) fn generation(conn: &Connection) -> Result<i64, SqliteError> {
    Ok(conn
        .prepare_cached(include_str!("../sql/retag/generation.sql"))?
        .query_row([], |row| row.get(0))?)
}
