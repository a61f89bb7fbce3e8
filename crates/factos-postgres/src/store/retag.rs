//! [`TagHistory`] for PostgreSQL. Staging is a plain insert; a publish
//! takes the key every reader and decider shares, exclusively: it waits
//! for the decisions in flight (they hold it from their read to their
//! append, so they commit before the tags appear) and holds new ones off
//! until it commits (so they read the tags). It also starts a new tag
//! generation, which retires every snapshot.

use factos::StoreError;
use factos::retag::{AddedTag, TagHistory};
use tokio_postgres::types::Type;

use crate::error::PgError;
use crate::locks;
use crate::store::read::to_sql;
use crate::store::{PgStore, snapshot};

impl TagHistory for PgStore {
    async fn stage_tags(&self, name: &str, tags: Vec<AddedTag>) -> Result<(), StoreError> {
        let mut positions = Vec::with_capacity(tags.len());
        let mut names = Vec::with_capacity(tags.len());
        for (position, tag) in &tags {
            positions.push(to_sql("position", position.value())?);
            names.push(tag.as_str());
        }
        let (session, _) = self.begin(false).await?;
        let staged = session
            .client()
            .execute_typed(
                include_str!("../sql/retag/stage.sql"),
                &[
                    (&name, Type::TEXT),
                    (&positions, Type::INT8_ARRAY),
                    (&names, Type::TEXT_ARRAY),
                ],
            )
            .await;
        session.end(staged.map_err(PgError::from)).await?;
        Ok(())
    }

    async fn publish_tags(&self, name: &str) -> Result<u64, StoreError> {
        let (session, locking) = self.begin(false).await?;
        let published = async {
            let fence = locks::plan(locking.mode, &[(locking.keys.bulk(), true)]);
            locks::acquire(session.client(), locking.mode, &fence, None).await?;
            let added: i64 = session
                .client()
                .query_one(include_str!("../sql/retag/publish.sql"), &[&name])
                .await?
                .try_get(0)?;
            if added > 0 {
                snapshot::retire_all(session.client()).await?;
            }
            Ok::<_, PgError>(u64::try_from(added).unwrap_or(0))
        };
        let added = published.await;
        let added = session.end(added).await?;
        if added > 0 {
            self.committed();
        }
        Ok(added)
    }
}
