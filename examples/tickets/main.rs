//! Ticket sales racing for capacity: many concurrent buyers, one concert,
//! never oversold.
//!
//! Each buyer dispatches a `Buy` command whose consistency boundary is the
//! query "`TicketSold` events tagged with this concert". The decision only
//! stands if no matching sale was committed after the decision read; losers
//! of a race re-run their decision on fresh events. A reactor turns every
//! accepted sale into an "announce sale" effect value, which this program
//! counts and prints instead of sending anywhere.
//!
//! Runs on SQLite, the embedded default: a database file in a temporary
//! directory unless `--database PATH` names one. `--database-url
//! postgres://...` runs it unchanged on PostgreSQL (build it with
//! `--features postgres`).
//!
//! ```text
//! cargo run --example tickets -- --buyers 150 --capacity 100
//! ```

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use factos::{Dispatcher, JsonCodec, Query, QueryItem, Reactor, SharedStore, StreamId, Tag, react_all, reactor};

#[path = "domain.rs"]
mod domain;

use domain::{Buy, SoldOut, TicketSold, box_office};

/// The effect a sale calls for; the application decides how to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AnnounceSale {
    buyer: u32,
    position: u64,
}

fn announcements() -> impl Reactor<Event = TicketSold, Effect = AnnounceSale> {
    reactor(|sale: &factos::Recorded<TicketSold>| {
        vec![AnnounceSale {
            buyer: sale.event.buyer,
            position: sale.position.value(),
        }]
    })
}

fn concert_boundary(concert: u32) -> anyhow::Result<(Query, StreamId)> {
    let query =
        Query::from(QueryItem::types(["TicketSold".parse()?]).with_tags([Tag::new(format!("concert:{concert}"))?]));
    Ok((query, StreamId::new(format!("concert-{concert}"))?))
}

/// What a run did.
#[derive(Debug)]
struct Report {
    sold: usize,
    sold_out: usize,
    announcements: Vec<AnnounceSale>,
    elapsed: Duration,
}

/// Lets `buyers` concurrent tasks race for `capacity` tickets of one concert.
async fn sell_out<S: SharedStore>(store: S, buyers: u32, capacity: u32) -> anyhow::Result<Report> {
    let concert = 1;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for buyer in 0..buyers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let (query, stream) = concert_boundary(concert)?;
            let dispatcher = Dispatcher::new(&store, JsonCodec::new());
            let outcome = dispatcher
                .dispatch_context(&box_office(capacity), &Buy { concert, buyer }, &query, &stream)
                .await;
            anyhow::Ok(outcome)
        }));
    }
    let mut report = Report {
        sold: 0,
        sold_out: 0,
        announcements: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        match task.await.context("buyer task panicked")?? {
            Ok(committed) => {
                report.sold += committed.len();
                report.announcements.extend(react_all(&announcements(), &committed));
            }
            Err(rejected) if rejected.domain() == Some(&SoldOut) => report.sold_out += 1,
            Err(failed) => return Err(failed).context("a buyer's dispatch failed"),
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

#[path = "../support.rs"]
mod support;

#[path = "../read_model.rs"]
mod read_model;

/// The live sales board: tickets sold per concert, a durable projection
/// into a table next to the events.
struct SalesBoard;

impl read_model::Counters for SalesBoard {
    type Event = TicketSold;
    fn name(&self) -> &'static str {
        "sales_board"
    }
    fn query(&self) -> Query {
        let sold = factos::EventType::new("TicketSold").unwrap_or_else(|e| panic!("a constant event type: {e}"));
        Query::from(QueryItem::types([sold]))
    }
    fn changes(&self, sale: &factos::Recorded<TicketSold>) -> Vec<(i64, i64)> {
        vec![(i64::from(sale.event.concert), 1)]
    }
}

#[derive(Debug, Parser)]
#[command(about = "Concurrent buyers race for the tickets of one concert; it is never oversold.")]
struct Args {
    /// How many buyers race, each in its own task (more than there are
    /// tickets, so the capacity rule has something to refuse).
    #[arg(long, default_value_t = 150)]
    buyers: u32,
    /// How many tickets the concert has.
    #[arg(long, default_value_t = 100)]
    capacity: u32,
    #[command(flatten)]
    store: support::StoreArgs,
}

#[path = "../logging.rs"]
mod logging;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    logging::init_tracing();
    let args = Args::parse();
    let opened = args.store.open("tickets").await?;
    let sold = match &opened {
        support::Store::Sqlite(store, _scratch) => demo(store.clone(), &args).await?,
        #[cfg(feature = "postgres")]
        support::Store::Postgres(store) => demo(store.clone(), &args).await?,
    };
    let board = read_model::catch_up(&opened, SalesBoard, JsonCodec::new()).await?;
    println!("sales board:          {board:?} (a durable projection)");
    anyhow::ensure!(
        board.get(&1).copied().unwrap_or(0) == sold as i64,
        "the sales board must equal the accepted sales"
    );
    Ok(())
}

/// Runs the race and prints what happened; returns how many were sold.
async fn demo<S: SharedStore>(store: S, args: &Args) -> anyhow::Result<usize> {
    println!("{} buyers race for {} tickets", args.buyers, args.capacity);
    let report = sell_out(store.clone(), args.buyers, args.capacity).await?;
    let (query, _) = concert_boundary(1)?;
    let stored = store.read(&query, factos::ReadOptions::forwards()).await?.len();
    println!("sold:                 {}", report.sold);
    println!("rejected as sold out: {}", report.sold_out);
    println!("sales in the store:   {stored}");
    println!("announcements:        {}", report.announcements.len());
    if let Some(last) = report.announcements.iter().max_by_key(|a| a.position) {
        println!(
            "last announcement:    buyer {} at position {}",
            last.buyer, last.position
        );
    }
    let seconds = report.elapsed.as_secs_f64();
    println!("elapsed:              {:.1} ms", seconds * 1000.0);
    println!(
        "dispatches/s:         {:.0}",
        f64::from(args.buyers) / seconds.max(f64::EPSILON)
    );
    anyhow::ensure!(
        stored <= args.capacity as usize,
        "oversold: {stored} sales for {} tickets",
        args.capacity
    );
    anyhow::ensure!(
        report.sold == stored && report.sold + report.sold_out == args.buyers as usize,
        "every buyer must be either sold a ticket that is stored or refused"
    );
    println!(
        "=> {} sold, {} refused as sold out, {} tickets: nothing oversold",
        report.sold, report.sold_out, args.capacity
    );
    Ok(report.sold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use factos::EventStore;

    async fn fresh_store(dir: &tempfile::TempDir) -> anyhow::Result<factos_sqlite::SqliteStore> {
        let store = factos_sqlite::SqliteStore::open(dir.path().join("tickets.db"))?;
        store.migrate().await?;
        Ok(store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_oversells_and_announces_every_sale() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = fresh_store(&dir).await?;
        let report = sell_out(store.clone(), 32, 10).await?;
        assert_eq!((report.sold, report.sold_out), (10, 22));
        assert_eq!(report.announcements.len(), 10);
        let (query, _) = concert_boundary(1)?;
        assert_eq!(store.read(&query, factos::ReadOptions::forwards()).await?.len(), 10);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sells_to_everyone_when_capacity_suffices() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let report = sell_out(fresh_store(&dir).await?, 8, 100).await?;
        assert_eq!((report.sold, report.sold_out), (8, 0));
        Ok(())
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sales_board_equals_the_accepted_sales_on_both_backends() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let sqlite = fresh_store(&dir).await?;
        let (config, _) = factos_test_postgres::Cluster::shared()?.fresh_schema().await?;
        let postgres = factos_postgres::PgStore::connect_with(config, factos_postgres::PoolOptions::new(40))?;
        postgres.migrate().await?;
        let sold_sqlite = sell_out(sqlite.clone(), 20, 7).await?.sold;
        let sold_postgres = sell_out(postgres.clone(), 20, 7).await?.sold;
        for (store, sold) in [
            (support::Store::Sqlite(sqlite, None), sold_sqlite),
            (support::Store::Postgres(postgres), sold_postgres),
        ] {
            let board = read_model::catch_up(&store, SalesBoard, JsonCodec::new()).await?;
            assert_eq!(board, std::collections::BTreeMap::from([(1, sold as i64)]));
            assert_eq!(sold, 7);
        }
        Ok(())
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_oversells_on_postgres() -> anyhow::Result<()> {
        let (config, _) = factos_test_postgres::Cluster::shared()?.fresh_schema().await?;
        let store = factos_postgres::PgStore::connect_with(config, factos_postgres::PoolOptions::new(40))?;
        store.migrate().await?;
        let report = sell_out(store.clone(), 32, 10).await?;
        assert_eq!((report.sold, report.sold_out, report.announcements.len()), (10, 22, 10));
        let (query, _) = concert_boundary(1)?;
        assert_eq!(store.read(&query, factos::ReadOptions::forwards()).await?.len(), 10);
        Ok(())
    }
}
