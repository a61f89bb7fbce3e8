//! Section 6, context reads on KurrentDB: what a query that names its event
//! types costs next to one that selects by tags only, which the server
//! cannot filter (KurrentDB has no index over metadata), so every event of
//! the store crosses the wire to be matched in the client.

use std::time::Instant;

use factos::{AppendRequest, EventId, EventStore, EventType, NewEvent, Query, QueryItem, ReadOptions, StreamId, Tag};
use factos_kurrentdb::KurrentStore;
use factos_test_kurrentdb::FakeKurrentDb;

use crate::stats::{median, micros};
use crate::{Config, Report};

/// Event types in the store: event `i` has type `T{i % TYPES}`.
const TYPES: u64 = 10;
/// Customers: event `i` is tagged `customer:{i % CUSTOMERS}`, so one
/// customer's events all have one type.
const CUSTOMERS: u64 = 100;
/// Reads per query shape.
const SAMPLES: usize = 20;

async fn fill(store: &KurrentStore, size: u64) -> anyhow::Result<()> {
    for batch in 0..size.div_ceil(100) {
        let events = (batch * 100..((batch + 1) * 100).min(size))
            .map(|i| {
                Ok(NewEvent::new(
                    EventId::random(),
                    EventType::new(format!("T{}", i % TYPES))?,
                    format!(r#"{{"n":{i}}}"#).into_bytes(),
                )
                .with_tags([Tag::new(format!("customer:{}", i % CUSTOMERS))?]))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        store
            .append(AppendRequest::new(StreamId::new(format!("s-{}", batch % 50))?, events))
            .await?;
    }
    Ok(())
}

/// The median read time of `query` in microseconds, and how many events it
/// returned.
async fn time_reads(store: &KurrentStore, query: &Query) -> anyhow::Result<(f64, usize)> {
    let mut durations = Vec::new();
    let mut matched = 0;
    for _ in 0..SAMPLES {
        let started = Instant::now();
        matched = store.read(query, ReadOptions::forwards()).await?.len();
        durations.push(started.elapsed());
    }
    Ok((median(&micros(&durations)), matched))
}

/// Runs the section.
pub async fn run(config: &Config, report: &mut Report) -> anyhow::Result<()> {
    report.section(
        "10. KurrentDB context reads: event types on the server, tags in the client",
        "The in-process KurrentDB protocol server (`factos-test-kurrentdb`, through the official client over loopback \
         gRPC; no real server can run here), `factos-kurrentdb` reading one customer's context. Event *i* has type \
         `T{i mod 10}` and tag `customer:{i mod 100}`, so both queries return the same events: *typed* names the type \
         (the server sends only events of that type: a tenth of the store), *tag-only* does not (the server sends every \
         event and the client matches the tag). Median of 20 reads.",
        &[
            "events in store",
            "events returned",
            "sent by server: typed / tag-only",
            "typed µs",
            "tag-only µs",
            "tag-only / typed",
        ],
    );
    for &size in &config.kurrent_sizes {
        let server = FakeKurrentDb::start().await?;
        let store = KurrentStore::connect(&server.connection_string())?;
        fill(&store, size).await?;
        let customer = Tag::new("customer:7")?;
        let typed = Query::from(QueryItem::types([EventType::new("T7")?]).with_tags([customer.clone()]));
        let tag_only = Query::from(QueryItem::tags([customer]));
        let (typed_us, typed_matched) = time_reads(&store, &typed).await?;
        let (tag_us, tag_matched) = time_reads(&store, &tag_only).await?;
        anyhow::ensure!(typed_matched == tag_matched, "both queries must return the same events");
        report.row(&[
            size.to_string(),
            typed_matched.to_string(),
            format!("{} / {size}", size / TYPES),
            format!("{typed_us:.0}"),
            format!("{tag_us:.0}"),
            format!("{:.1}×", tag_us / typed_us),
        ]);
    }
    Ok(())
}
