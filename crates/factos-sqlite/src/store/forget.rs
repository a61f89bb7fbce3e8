//! [`SubjectKeys`] for SQLite: data keys in `factos_subject_keys`. Keys
//! are read on a reader connection; a subject's first key and a forget are
//! written by the writer thread. A forget deletes the key with
//! `secure_delete` on (its bytes are zeroed in the database file), starts a
//! new tag generation (retiring every snapshot, which may hold decrypted
//! data), then truncates the write-ahead log, which held the key's page.

use factos::StoreError;
use factos::forget::{KEY_LEN, SubjectKey, SubjectKeys};
use rusqlite::{Connection, OptionalExtension};

use crate::error::SqliteError;
use crate::store::{SqliteStore, snapshot};

impl SubjectKeys for SqliteStore {
    async fn keys_for_writing(&self, wanted: Vec<(String, [u8; KEY_LEN])>) -> Result<Vec<SubjectKey>, StoreError> {
        let keys = self
            .run_in_group(move |conn| {
                let mut create = conn.prepare_cached(include_str!("../sql/forget/create.sql"))?;
                for (subject, fresh) in &wanted {
                    create.execute(rusqlite::params![subject, fresh.as_slice()])?;
                }
                let keys = wanted
                    .iter()
                    .map(|(subject, _)| Ok(key(conn, subject)?.unwrap_or(SubjectKey::Forgotten)))
                    .collect::<Result<Vec<_>, SqliteError>>()?;
                Ok((true, keys))
            })
            .await?;
        Ok(keys)
    }

    async fn keys_for_reading(&self, subjects: &[String]) -> Result<Vec<Option<SubjectKey>>, StoreError> {
        let subjects = subjects.to_vec();
        Ok(self
            .run(move |conn| subjects.iter().map(|subject| key(conn, subject)).collect())
            .await?)
    }

    async fn forget(&self, subject: &str) -> Result<bool, StoreError> {
        let subject = subject.to_owned();
        let had_key = self
            .run_in_group(move |conn| {
                let had_key = matches!(key(conn, &subject)?, Some(SubjectKey::Key(_)));
                conn.pragma_update(None, "secure_delete", "ON")?;
                conn.prepare_cached(include_str!("../sql/forget/forget.sql"))?
                    .execute([&subject])?;
                conn.prepare_cached(include_str!("../sql/forget/mark.sql"))?
                    .execute([&subject])?;
                snapshot::retire_all(conn)?;
                Ok((true, had_key))
            })
            .await?;
        // Copies of the key's page in the log go with it; readers in the
        // middle of a read can keep a part of it for a while (best effort).
        let truncated = self
            .run_writing(|conn| Ok(conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")?))
            .await;
        if let Err(error) = truncated {
            tracing::warn!(%error, "the write-ahead log could not be truncated after a forget");
        }
        Ok(had_key)
    }
}

/// What the table holds for `subject`: `None` when it never had a key.
fn key(conn: &Connection, subject: &str) -> Result<Option<SubjectKey>, SqliteError> {
    let row = conn
        .prepare_cached(include_str!("../sql/forget/key.sql"))?
        .query_row([subject], |row| {
            Ok((row.get::<_, Option<Vec<u8>>>(0)?, row.get::<_, bool>(1)?))
        })
        .optional()?;
    Ok(row.map(
        |(key, forgotten)| match key.and_then(|k| <[u8; KEY_LEN]>::try_from(k).ok()) {
            Some(key) if !forgotten => SubjectKey::Key(key),
            _ => SubjectKey::Forgotten,
        },
    ))
}
