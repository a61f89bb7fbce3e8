//! Raw-SQL baselines: the same rows written with the same drivers and
//! durability settings, without the store (no id, revision or lock checks,
//! no async hops for SQLite).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use factos::{AppendRequest, Timestamp};
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
    /// Opens a database that `factos-sqlite` has migrated, with the store's
    /// default settings (WAL, `synchronous = NORMAL`).
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
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

/// Inserts events and tag rows into a factos-postgres schema directly.
pub struct RawPg {
    client: tokio_postgres::Client,
    revision: i64,
}

impl RawPg {
    /// Connects with `config` (whose `search_path` is a migrated schema).
    pub async fn connect(config: &tokio_postgres::Config) -> anyhow::Result<Self> {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(Self { client, revision: -1 })
    }

    /// Appends the request's events in one transaction: take positions,
    /// insert the events, insert the tag rows.
    pub async fn append(&mut self, request: &AppendRequest) -> anyhow::Result<()> {
        let tx = self.client.transaction().await?;
        let count = request.events.len() as i64;
        let positions: Vec<i64> = tx
            .query_typed(
                "SELECT nextval('events_position_seq') AS p FROM generate_series(1, $1::int8) ORDER BY p",
                &[(&count, Type::INT8)],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
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
        tx.execute_typed(
            "INSERT INTO events (position, event_id, stream, revision, event_type, version, tags, metadata, data, recorded_at, fingerprint) \
             SELECT p, id, $3, r, t, v, string_to_array(g, E'\\x1f'), m::jsonb, d, $10, $11 \
             FROM unnest($1::int8[], $2::uuid[], $4::int8[], $5::text[], $6::int8[], $7::text[], $8::text[], $9::bytea[]) \
             AS e(p, id, r, t, v, g, m, d)",
            &[
                (&positions, Type::INT8_ARRAY),
                (&ids, Type::UUID_ARRAY),
                (&stream, Type::TEXT),
                (&revisions, Type::INT8_ARRAY),
                (&types, Type::TEXT_ARRAY),
                (&versions, Type::INT8_ARRAY),
                (&tag_text, Type::TEXT_ARRAY),
                (&metadata, Type::TEXT_ARRAY),
                (&data, Type::BYTEA_ARRAY),
                (&now, Type::TIMESTAMPTZ),
                (&fingerprint, Type::INT8),
            ],
        )
        .await?;
        let (mut tag_names, mut tag_positions, mut tag_types) = (Vec::new(), Vec::new(), Vec::new());
        for (event, position) in request.events.iter().zip(&positions) {
            for tag in &event.tags {
                tag_names.push(tag.as_str());
                tag_positions.push(*position);
                tag_types.push(event.event_type.as_str());
            }
        }
        tx.execute_typed(
            "INSERT INTO event_tags (tag, position, event_type) SELECT * FROM unnest($1::text[], $2::int8[], $3::text[])",
            &[(&tag_names, Type::TEXT_ARRAY), (&tag_positions, Type::INT8_ARRAY), (&tag_types, Type::TEXT_ARRAY)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
