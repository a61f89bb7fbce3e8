//! [`SubjectKeys`] for PostgreSQL: data keys in `factos_subject_keys`. A
//! forget destroys the key, starts a new tag generation (retiring every
//! snapshot, which may hold decrypted data) in the same transaction, then
//! vacuums the key table so the old row version goes (best effort; its
//! bytes stay in free space until overwritten, and in WAL archives and
//! backups for as long as they are kept).

use factos::StoreError;
use factos::forget::{KEY_LEN, SubjectKey, SubjectKeys};
use tokio_postgres::GenericClient;
use tokio_postgres::types::Type;

use crate::error::PgError;
use crate::store::{PgStore, snapshot};

impl SubjectKeys for PgStore {
    async fn keys_for_writing(&self, wanted: Vec<(String, [u8; KEY_LEN])>) -> Result<Vec<SubjectKey>, StoreError> {
        let subjects: Vec<String> = wanted.iter().map(|(s, _)| s.clone()).collect();
        let fresh: Vec<&[u8]> = wanted.iter().map(|(_, key)| key.as_slice()).collect();
        let (session, _) = self.begin(false).await?;
        let created = async {
            session
                .client()
                .execute_typed(
                    include_str!("../sql/forget/create.sql"),
                    &[(&subjects, Type::TEXT_ARRAY), (&fresh, Type::BYTEA_ARRAY)],
                )
                .await?;
            keys(session.client(), &subjects).await
        };
        let created = created.await;
        let keys = session.end(created).await?;
        Ok(keys
            .into_iter()
            .map(|key| key.unwrap_or(SubjectKey::Forgotten))
            .collect())
    }

    async fn keys_for_reading(&self, subjects: &[String]) -> Result<Vec<Option<SubjectKey>>, StoreError> {
        let (session, _) = self.begin(false).await?;
        let read = keys(session.client(), subjects).await;
        Ok(session.end(read).await?)
    }

    async fn forget(&self, subject: &str) -> Result<bool, StoreError> {
        let (session, _) = self.begin(false).await?;
        let forgotten = async {
            let client = session.client();
            let had_key = match client
                .query_opt(include_str!("../sql/forget/had_key.sql"), &[&subject])
                .await?
            {
                Some(row) => row.try_get(0)?,
                None => false,
            };
            client
                .execute(include_str!("../sql/forget/forget.sql"), &[&subject])
                .await?;
            snapshot::retire_all(session.client()).await?;
            Ok::<_, PgError>(had_key)
        };
        let forgotten = forgotten.await;
        let had_key = session.end(forgotten).await?;
        // Outside any transaction (VACUUM refuses one), so in the store's
        // schema by name.
        let table = match &self.limits.schema {
            Some(schema) => format!("{schema}.factos_subject_keys"),
            None => "factos_subject_keys".to_owned(),
        };
        let vacuumed = async {
            let client = self.pool().get().await.map_err(PgError::Pool)?;
            client
                .batch_execute(&format!("VACUUM {table}"))
                .await
                .map_err(PgError::from)
        };
        if let Err(error) = vacuumed.await {
            tracing::warn!(%error, "the key table could not be vacuumed after a forget");
        }
        Ok(had_key)
    }
}

/// What the table holds for each of `subjects`, in order: `None` for a
/// subject that never had a key.
async fn keys<C: GenericClient + Sync>(client: &C, subjects: &[String]) -> Result<Vec<Option<SubjectKey>>, PgError> {
    let rows = client
        .query_typed(include_str!("../sql/forget/keys.sql"), &[(&subjects, Type::TEXT_ARRAY)])
        .await?;
    rows.iter()
        .map(|row| {
            let (key, forgotten, exists): (Option<Vec<u8>>, Option<bool>, bool) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            Ok(
                exists.then(|| match key.and_then(|k| <[u8; KEY_LEN]>::try_from(k).ok()) {
                    Some(key) if forgotten != Some(true) => SubjectKey::Key(key),
                    _ => SubjectKey::Forgotten,
                }),
            )
        })
        .collect()
}
