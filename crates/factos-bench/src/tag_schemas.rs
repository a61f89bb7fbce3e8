//! Section 11, the tag schema alternatives on PostgreSQL: the tag table
//! factos uses against a GIN index on the events' `text[]` of tags and on a
//! JSONB array of them, measured with raw SQL on 100-event batches and on
//! context reads from a large log.

use std::time::{Duration, Instant};

use factos::StreamId;
use factos_postgres::PgStore;
use tokio_postgres::{Client, NoTls};

use crate::durability::Durability;
use crate::raw::RawPg;
use crate::stats::{micros, percentile_of};
use crate::workload::{next_random, order_batch};
use crate::{Config, Report};

/// One way of keeping tags, made from a freshly migrated factos schema.
struct Schema {
    name: &'static str,
    /// Turns the factos schema into this one.
    setup: &'static str,
    /// The batch insert, with [`RawPg`]'s ten parameters; `None`: the raw
    /// baseline's own, which writes the tag table.
    insert: Option<&'static str>,
    /// Adds `$1` generated order events to the log, server-side (`$2`
    /// customers), tags included.
    fill: &'static str,
    /// One customer's context: `$1` the tag, `$2` the type.
    read: &'static str,
}

/// The start of every statement that writes event rows.
macro_rules! event_rows {
    () => {
        "INSERT INTO events (position, event_id, stream, revision, event_type, version, tags, metadata, data, \
         recorded_at, fingerprint) "
    };
}

/// The rows of `$1` generated order events after those in the log, with
/// the customer and order tags between `$open` and `$close` (an array or
/// a JSONB array).
macro_rules! generated_rows {
    ($open:literal, $close:literal) => {
        concat!(
            "SELECT nextval('events_position_seq'), gen_random_uuid(), 'fill', i, 'OrderPlaced', 1, ",
            $open,
            "'customer:' || (i % $2), 'order:' || i",
            $close,
            ", '{}', '\\x7b7d', now(), 0 \
             FROM generate_series((SELECT count(*) FROM events), (SELECT count(*) FROM events) + $1 - 1) AS i"
        )
    };
}

/// The rows of a batch from [`RawPg`]'s parameters, with the joined tags
/// `g` turned into the column by `$tags`.
macro_rules! batch_rows {
    ($tags:literal) => {
        concat!(
            "SELECT nextval('events_position_seq'), id, $2, r, t, v, ",
            $tags,
            ", m::jsonb, d, $9, $10 \
             FROM unnest($1::uuid[], $3::int8[], $4::text[], $5::int8[], $6::text[], $7::text[], $8::bytea[]) \
             WITH ORDINALITY AS x(id, r, t, v, g, m, d, n) ORDER BY n"
        )
    };
}

const READ_COLUMNS: &str = "SELECT position, event_id, stream, revision, event_type, version, tags, metadata, data, \
                            recorded_at FROM events ";

const SCHEMAS: [Schema; 3] = [
    Schema {
        name: "tag table (factos): `event_tags (tag, position) INCLUDE (event_type)`",
        setup: "",
        insert: None,
        fill: concat!(
            "WITH e AS (",
            event_rows!(),
            generated_rows!("ARRAY[", "]"),
            " RETURNING position, event_type, tags) \
             INSERT INTO event_tags (tag, position, event_type) SELECT tag, position, event_type FROM e, unnest(tags) AS tag"
        ),
        read: "WHERE position IN (SELECT position FROM event_tags WHERE tag = $1 AND event_type = $2) ORDER BY position",
    },
    Schema {
        name: "`text[]` column + GIN index",
        setup: "DROP TABLE event_tags CASCADE; CREATE INDEX events_tags ON events USING gin (tags)",
        insert: Some(concat!(event_rows!(), batch_rows!("string_to_array(g, E'\\x1f')"))),
        fill: concat!(event_rows!(), generated_rows!("ARRAY[", "]")),
        read: "WHERE tags @> ARRAY[$1::text] AND event_type = $2 ORDER BY position",
    },
    Schema {
        name: "JSONB column + GIN index (`jsonb_path_ops`)",
        setup: "DROP TABLE event_tags CASCADE; ALTER TABLE events ALTER COLUMN tags TYPE jsonb USING to_jsonb(tags); \
                CREATE INDEX events_tags ON events USING gin (tags jsonb_path_ops)",
        insert: Some(concat!(
            event_rows!(),
            batch_rows!("to_jsonb(string_to_array(g, E'\\x1f'))")
        )),
        fill: concat!(event_rows!(), generated_rows!("jsonb_build_array(", ")")),
        read: "WHERE tags @> jsonb_build_array($1::text) AND event_type = $2 ORDER BY position",
    },
];

/// A fresh factos schema turned into `schema`, and a client on it.
async fn prepare(schema: &Schema) -> anyhow::Result<(tokio_postgres::Config, Client)> {
    let (config, _) = Durability::Durable.cluster()?.fresh_schema().await?;
    PgStore::connect(config.clone())?.migrate().await?;
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    if !schema.setup.is_empty() {
        client.batch_execute(schema.setup).await?;
    }
    Ok((config, client))
}

/// Runs the section.
pub async fn run(config: &Config, report: &mut Report) -> anyhow::Result<()> {
    let size = config.scaling_sizes.last().copied().unwrap_or(10_000);
    report.section(
        &format!("11. Tag schemas, raw SQL — {}", Durability::Durable.postgres()),
        &format!(
            "Three ways of keeping tags, each in a schema of its own on the same server, written and read with raw SQL \
             (no store). *reads*: each log filled to {size} events server-side (10 events per customer, spread over the \
             log; `VACUUM ANALYZE` after), then one customer's context (type and tag, 10 events) read 1,000 times, the \
             schemas taking turns read by read. *batches*: then 100-event batches of the order workload (2 tags an \
             event) appended to those logs, one prepared statement in autocommit per batch, the schemas taking turns batch \
             by batch ({} batches each).",
            config.batched_events / 100
        ),
        &[
            "tags kept in",
            "batch events/s",
            "vs tag table",
            "read p50 µs",
            "read p99 µs",
            "vs tag table",
        ],
    );
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for schema in &SCHEMAS {
        let (pg, client) = prepare(schema).await?;
        let insert = match schema.insert {
            None => RawPg::connect(&pg).await?,
            Some(sql) => RawPg::with_statement(&pg, sql).await?,
        };
        writers.push((insert, Duration::ZERO));
        readers.push(client);
    }
    let customers = size / 10;
    let mut latencies = vec![Vec::new(); SCHEMAS.len()];
    let mut reads = Vec::new();
    for (schema, client) in SCHEMAS.iter().zip(&readers) {
        let fill = client.prepare(schema.fill).await?;
        let have: i64 = client.query_one("SELECT count(*) FROM events", &[]).await?.get(0);
        let missing = i64::try_from(size)?.saturating_sub(have);
        let mut filled = 0;
        while filled < missing {
            let chunk = (missing - filled).min(100_000);
            client.execute(&fill, &[&chunk, &i64::try_from(customers)?]).await?;
            filled += chunk;
        }
        client.batch_execute("VACUUM ANALYZE").await?;
        reads.push(client.prepare(&format!("{READ_COLUMNS}{}", schema.read)).await?);
    }
    let mut state = 11u64;
    for _ in 0..1_000 {
        let tag = format!("customer:{}", next_random(&mut state, customers));
        for ((client, read), spent) in readers.iter().zip(&reads).zip(&mut latencies) {
            let started = Instant::now();
            client.query(read, &[&tag, &"OrderPlaced"]).await?;
            spent.push(started.elapsed());
        }
    }
    let stream = StreamId::new("orders")?;
    let batches = config.batched_events / 100;
    for batch in 0..batches {
        let request = order_batch(batch * 100, 100, 1_000, &stream)?;
        for (writer, spent) in &mut writers {
            let started = Instant::now();
            writer.append(&request).await?;
            *spent += started.elapsed();
        }
    }
    let rate = |spent: Duration| (batches * 100) as f64 / spent.as_secs_f64();
    let base_rate = rate(writers[0].1);
    let base_read = percentile_of(&micros(&latencies[0]), 50.0);
    for ((schema, (_, spent)), latencies) in SCHEMAS.iter().zip(&writers).zip(&latencies) {
        let latencies = micros(latencies);
        let p50 = percentile_of(&latencies, 50.0);
        report.row(&[
            schema.name.into(),
            format!("{:.0}", rate(*spent)),
            format!("{:.2}", rate(*spent) / base_rate),
            format!("{p50:.0}"),
            format!("{:.0}", percentile_of(&latencies, 99.0)),
            format!("{:.2}", p50 / base_read),
        ]);
    }
    Ok(())
}
