//! Raw-SQL baselines: the same rows written with the same drivers and
//! durability settings, without the store (no id, revision or lock checks,
//! no async hops for SQLite; one prepared autocommit statement for
//! PostgreSQL).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use factos::{AppendRequest, Timestamp};
use factos_sqlite::Synchronous;
use rusqlite::{Connection, TransactionBehavior, params};
use tokio_postgres::types::Type;

fn tags(event: &factos::NewEvent) -> String {
    event.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>().join("\u{1f}")
}

fn metadata(event: &factos::NewEvent) -> anyhow::Result<String> {
    Ok(serde_json::to_string(
        &event.metadata.iter().collect::<BTreeMap<_, _>>(),
    )?)
}

/// Inserts events and tag rows into a factos-sqlite schema directly.
pub struct RawSqlite {
    conn: Connection,
    position: i64,
    revision: i64,
}

impl RawSqlite {
    /// Opens a database that `factos-sqlite` has migrated, in WAL mode
    /// with `synchronous` as given.
    pub fn open(path: &Path, synchronous: Synchronous) -> anyhow::Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            match synchronous {
                Synchronous::Full => "FULL",
                Synchronous::Normal => "NORMAL",
            },
        )?;
        Ok(Self {
            conn,
            position: 0,
            revision: -1,
        })
    }

    /// Appends the request's events in one transaction.
    pub fn append(&mut self, request: &AppendRequest) -> anyhow::Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut event_row = tx.prepare_cached(
                "INSERT INTO events (position, event_id, stream, revision, event_type, version, tags, metadata, data, recorded_at, fingerprint) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            let mut tag_row =
                tx.prepare_cached("INSERT INTO event_tags (tag, position, event_type) VALUES (?1, ?2, ?3)")?;
            let fingerprint = i64::from_ne_bytes(request.fingerprint().to_ne_bytes());
            let now = Timestamp::now().as_unix_micros();
            for event in &request.events {
                self.position += 1;
                self.revision += 1;
                event_row.execute(params![
                    self.position,
                    event.id.as_bytes().as_slice(),
                    request.stream.as_str(),
                    self.revision,
                    event.event_type.as_str(),
                    event.version,
                    tags(event),
                    metadata(event)?,
                    event.data,
                    now,
                    fingerprint,
                ])?;
                for tag in &event.tags {
                    tag_row.execute(params![tag.as_str(), self.position, event.event_type.as_str()])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// The raw PostgreSQL baseline: one prepared statement, run in autocommit,
/// that takes the positions and inserts the event rows and their tag rows.
/// One round trip and one statement per append: the physical limit of the
/// schema.
const RAW_PG_APPEND: &str = "WITH e AS (\
     INSERT INTO events (position, event_id, stream, revision, event_type, version, tags, metadata, data, recorded_at, fingerprint) \
     SELECT nextval('events_position_seq'), id, $2, r, t, v, string_to_array(g, E'\\x1f'), m::jsonb, d, $9, $10 \
     FROM unnest($1::uuid[], $3::int8[], $4::text[], $5::int8[], $6::text[], $7::text[], $8::bytea[]) \
         WITH ORDINALITY AS x(id, r, t, v, g, m, d, n) ORDER BY n \
     RETURNING position, event_type, tags) \
     INSERT INTO event_tags (tag, position, event_type) SELECT tag, e.position, e.event_type FROM e, unnest(e.tags) AS tag";

/// Inserts events and tag rows into a factos-postgres schema directly.
pub struct RawPg {
    client: tokio_postgres::Client,
    statement: tokio_postgres::Statement,
    revision: i64,
}

impl RawPg {
    /// Connects with `config` (whose `search_path` is a migrated schema)
    /// and prepares the statement.
    pub async fn connect(config: &tokio_postgres::Config) -> anyhow::Result<Self> {
        Self::with_statement(config, RAW_PG_APPEND).await
    }

    /// Connects with `config` and prepares `sql` in place of the baseline
    /// statement: it takes the same ten parameters (ids, stream,
    /// revisions, types, versions, tags joined by U+001F, metadata, data,
    /// recorded at, fingerprint), for schemas that keep tags otherwise.
    pub async fn with_statement(config: &tokio_postgres::Config, sql: &str) -> anyhow::Result<Self> {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let statement = client
            .prepare_typed(
                sql,
                &[
                    Type::UUID_ARRAY,
                    Type::TEXT,
                    Type::INT8_ARRAY,
                    Type::TEXT_ARRAY,
                    Type::INT8_ARRAY,
                    Type::TEXT_ARRAY,
                    Type::TEXT_ARRAY,
                    Type::BYTEA_ARRAY,
                    Type::TIMESTAMPTZ,
                    Type::INT8,
                ],
            )
            .await?;
        Ok(Self {
            client,
            statement,
            revision: -1,
        })
    }

    /// Appends the request's events with the one statement.
    pub async fn append(&mut self, request: &AppendRequest) -> anyhow::Result<()> {
        let count = request.events.len() as i64;
        let ids: Vec<uuid::Uuid> = request.events.iter().map(|e| *e.id.as_uuid()).collect();
        let revisions: Vec<i64> = (1..=count).map(|i| self.revision + i).collect();
        self.revision += count;
        let types: Vec<&str> = request.events.iter().map(|e| e.event_type.as_str()).collect();
        let versions: Vec<i64> = request.events.iter().map(|e| i64::from(e.version)).collect();
        let tag_text: Vec<String> = request.events.iter().map(tags).collect();
        let metadata: Vec<String> = request.events.iter().map(metadata).collect::<anyhow::Result<_>>()?;
        let data: Vec<&[u8]> = request.events.iter().map(|e| e.data.as_slice()).collect();
        let stream = request.stream.as_str();
        let now = SystemTime::now();
        let fingerprint = i64::from_ne_bytes(request.fingerprint().to_ne_bytes());
        self.client
            .execute(
                &self.statement,
                &[
                    &ids,
                    &stream,
                    &revisions,
                    &types,
                    &versions,
                    &tag_text,
                    &metadata,
                    &data,
                    &now,
                    &fingerprint,
                ],
            )
            .await?;
        Ok(())
    }
}
