//! Several OS processes on one database file: concurrent dispatch keeps the
//! invariant, and a writer killed with SIGKILL loses nothing it reported as
//! committed and leaves no partial batch.
//!
//! The child processes are this test binary run again with
//! `--ignored --exact child_process`; the environment tells the child what
//! to do.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use factos::{
    AppendRequest, Dispatcher, EventId, EventStore, EventType, ExpectedRevision, JsonCodec, Metadata, NewEvent, Query,
    ReadOptions, StreamId, StreamRevision,
};
use factos_conformance::tickets::{Buy, SoldOut, TicketSold, box_office, concert_query, concert_stream};
use factos_sqlite::SqliteStore;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn spawn_child(mode: &str, db: &Path, extra: &[(&str, String)]) -> std::io::Result<Child> {
    let db = db.display().to_string();
    let mut env = vec![("FACTOS_CHILD_MODE", mode), ("FACTOS_CHILD_DB", db.as_str())];
    env.extend(extra.iter().map(|(key, value)| (*key, value.as_str())));
    factos_conformance::child::child_process_command(&env)?
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
}

/// The entry point of child processes; does nothing unless started by one of
/// the tests below.
#[test]
#[ignore = "run as a child process by the other tests in this file"]
fn child_process() -> TestResult {
    let (Ok(mode), Ok(db)) = (std::env::var("FACTOS_CHILD_MODE"), std::env::var("FACTOS_CHILD_DB")) else {
        return Ok(());
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let store = SqliteStore::open(&db)?;
        store.migrate().await?;
        match mode.as_str() {
            "buy" => buy_tickets(&store).await,
            "append" => append_forever(&store).await,
            other => Err(format!("unknown child mode {other}").into()),
        }
    })
}

/// Dispatches `FACTOS_BUYS` purchases for concert 1 and prints the tally.
async fn buy_tickets(store: &SqliteStore) -> TestResult {
    let buys: u32 = std::env::var("FACTOS_BUYS")?.parse()?;
    let capacity: u32 = std::env::var("FACTOS_CAPACITY")?.parse()?;
    let first_buyer: u32 = std::env::var("FACTOS_FIRST_BUYER")?.parse()?;
    let dispatcher = Dispatcher::new(store, JsonCodec::<TicketSold>::new());
    let (mut sold, mut sold_out) = (0, 0);
    for buyer in first_buyer..first_buyer + buys {
        let buy = Buy { concert: 1, buyer };
        match dispatcher
            .dispatch_context(&box_office(capacity), &buy, &concert_query(1), &concert_stream(1))
            .await
        {
            Ok(_) => sold += 1,
            Err(factos::Error::Domain(SoldOut)) => sold_out += 1,
            Err(other) => return Err(other.into()),
        }
    }
    println!("tally {sold} {sold_out}");
    Ok(())
}

/// Appends batches of three events to one stream until killed, printing the
/// batch number after each commit.
async fn append_forever(store: &SqliteStore) -> TestResult {
    let stream = StreamId::new("durable")?;
    let kind = EventType::new("Written")?;
    let start = store.read_stream(&stream, StreamRevision::FIRST).await?.len() as u64;
    for batch in start / 3.. {
        let events = (0..3)
            .map(|i| {
                NewEvent::new(EventId::random(), kind.clone(), format!("{batch}/{i}").into_bytes())
                    .with_metadata(Metadata::new().with("batch", batch.to_string()))
            })
            .collect();
        let expected = match batch {
            0 => ExpectedRevision::NoStream,
            n => ExpectedRevision::Exact(StreamRevision::new(n * 3 - 1)),
        };
        store
            .append(AppendRequest::new(stream.clone(), events).expect(expected))
            .await?;
        println!("committed {batch}");
    }
    Ok(())
}

fn tally(child: Child) -> Result<(u32, u32), Box<dyn std::error::Error>> {
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8(output.stdout)?;
    if !output.status.success() {
        return Err(format!("child failed ({}): {stdout}", output.status).into());
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tally "))
        .ok_or(format!("no tally in {stdout:?}"))?;
    let mut parts = line.split(' ').map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(sold)), Some(Ok(sold_out))) => Ok((sold, sold_out)),
        _ => Err(format!("bad tally {line:?}").into()),
    }
}

#[tokio::test]
async fn two_processes_dispatching_on_one_file_never_oversell() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("events.db");
    SqliteStore::open(&db)?.migrate().await?;
    let capacity = 60;
    let children = [0u32, 1]
        .map(|n| {
            spawn_child(
                "buy",
                &db,
                &[
                    ("FACTOS_BUYS", "50".into()),
                    ("FACTOS_CAPACITY", capacity.to_string()),
                    ("FACTOS_FIRST_BUYER", (n * 1000).to_string()),
                ],
            )
        })
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let mut sold = 0;
    let mut sold_out = 0;
    for child in children {
        let (s, o) = tally(child)?;
        sold += s;
        sold_out += o;
    }
    assert_eq!((sold, sold_out), (capacity, 100 - capacity));
    let store = SqliteStore::open(&db)?;
    let sales = store.read(&concert_query(1), ReadOptions::forwards()).await?;
    assert_eq!(sales.len() as u32, capacity, "no lost or doubled sale");
    let revisions: Vec<u64> = sales.iter().map(|e| e.revision.value()).collect();
    assert_eq!(revisions, (0..u64::from(capacity)).collect::<Vec<_>>());
    assert!(sales.windows(2).all(|w| w[0].position < w[1].position));
    Ok(())
}

#[tokio::test]
async fn sigkilled_writer_loses_no_reported_commit_and_leaves_no_partial_batch() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("events.db");
    SqliteStore::open(&db)?.migrate().await?;
    let stream = StreamId::new("durable")?;
    let mut reported_max = None::<u64>;
    for round in 0..20u64 {
        // Varied, reproducible moments: 5 to 95 ms after the first commit.
        let delay = Duration::from_millis(5 + (round * 37 + 11) % 91);
        let mut child = spawn_child("append", &db, &[])?;
        let stdout = child.stdout.take().ok_or("child has no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut started = None;
        while let Some(line) = lines.next().transpose()? {
            if let Some(batch) = line.strip_prefix("committed ") {
                reported_max = Some(batch.parse()?);
                let since = *started.get_or_insert_with(Instant::now);
                if since.elapsed() >= delay {
                    break;
                }
            }
        }
        child.kill()?;
        child.wait()?;
        // The child may have committed more than it printed before the kill;
        // what it printed must all be there.
        let store = SqliteStore::open(&db)?;
        let events = store.read_stream(&stream, StreamRevision::FIRST).await?;
        assert_eq!(events.len() % 3, 0, "round {round}: a partial batch is visible");
        let batches = events.len() as u64 / 3;
        let reported = reported_max.ok_or("the child reported no commit")?;
        assert!(
            batches > reported,
            "round {round}: batch {reported} was reported committed but is missing"
        );
        for (i, event) in events.iter().enumerate() {
            let i = i as u64;
            assert_eq!(
                event.revision.value(),
                i,
                "round {round}: revisions must be consecutive"
            );
            assert_eq!(event.metadata.get("batch"), Some((i / 3).to_string().as_str()));
            assert_eq!(event.event, format!("{}/{}", i / 3, i % 3).into_bytes());
        }
        let all = store.read(&Query::all(), ReadOptions::forwards()).await?;
        assert!(
            all.windows(2).all(|w| w[0].position < w[1].position),
            "round {round}: positions out of order"
        );
    }
    Ok(())
}
