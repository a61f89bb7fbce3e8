//! Appends whose connection is lost after the server received them and
//! before their answer came back: the outcome is unknown to the caller, and
//! the store must find it out (the server committed) without writing the
//! events twice or deciding again.
//!
//! A proxy between the store and the real server forwards everything until
//! it sees a marker in what the client sends (the batch's payload); it
//! forwards that too, holds back the server's answer, and closes both ends
//! once the server has had time to commit.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use factos::{
    AppendRequest, Dispatcher, EventId, EventStore, EventType, ExpectedRevision, JsonCodec, NewEvent, Query,
    ReadOptions, StreamId, Tag,
};
use factos_conformance::tickets::{Buy, TicketSold, box_office, concert_query, concert_stream};
use factos_postgres::{PgStore, PoolOptions};
use factos_test_postgres::Cluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixStream};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A buyer number that appears in no other payload: the proxy's marker.
const MARKED_BUYER: u32 = 987_654_321;

/// A TCP proxy to the test cluster's unix socket that cuts the connection
/// carrying the marker once, after forwarding it.
struct CuttingProxy {
    port: u16,
    /// How often the marker went through to the server.
    marked: Arc<AtomicUsize>,
    /// Whether a connection was cut.
    cut: Arc<AtomicBool>,
}

impl CuttingProxy {
    async fn start(socket: PathBuf, marker: Vec<u8>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let marked = Arc::new(AtomicUsize::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        let (seen, done) = (marked.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = UnixStream::connect(&socket).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, marker.clone(), seen.clone(), done.clone()));
            }
        });
        Ok(Self { port, marked, cut })
    }
}

/// Relays one connection; the first time `marker` goes through (and no
/// connection was cut yet), the server's answer is held back and both ends
/// are closed half a second later.
async fn relay(
    client: tokio::net::TcpStream,
    server: UnixStream,
    marker: Vec<u8>,
    marked: Arc<AtomicUsize>,
    cut: Arc<AtomicBool>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let cutting = Arc::new(AtomicBool::new(false));
    let holding = cutting.clone();
    let answers = tokio::spawn(async move {
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let Ok(n) = server_read.read(&mut buffer).await else {
                return;
            };
            if n == 0 || holding.load(Ordering::SeqCst) {
                return;
            }
            if client_write.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    });
    let mut buffer = vec![0; 64 * 1024];
    while let Ok(n @ 1..) = client_read.read(&mut buffer).await {
        let carries_marker = buffer[..n].windows(marker.len()).any(|w| w == marker);
        if carries_marker {
            marked.fetch_add(1, Ordering::SeqCst);
        }
        let cut_now = carries_marker && !cut.swap(true, Ordering::SeqCst);
        if cut_now {
            cutting.store(true, Ordering::SeqCst);
        }
        if server_write.write_all(&buffer[..n]).await.is_err() {
            break;
        }
        if cut_now {
            // Time for the server to run and commit what it was sent.
            tokio::time::sleep(Duration::from_millis(500)).await;
            break;
        }
    }
    answers.abort();
}

/// A store in a fresh schema, reached through a cutting proxy.
async fn store_behind_proxy() -> Result<(PgStore, CuttingProxy, PgStore), Box<dyn std::error::Error + Send + Sync>> {
    let cluster = Cluster::shared()?;
    let Some(dir) = cluster.dir() else {
        return Err("the proxy needs the cluster this process starts (FACTOS_TEST_DATABASE_URL is set)".into());
    };
    let (direct_config, schema) = cluster.fresh_schema().await?;
    let direct = PgStore::connect_with(direct_config, PoolOptions::new(2))?;
    direct.migrate().await?;
    let proxy = CuttingProxy::start(dir.join(".s.PGSQL.5432"), MARKED_BUYER.to_string().into_bytes()).await?;
    let mut config = factos_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(proxy.port)
        .user("postgres")
        .dbname("postgres")
        .options(format!("-c search_path={schema}"));
    let store = PgStore::connect_with(config, PoolOptions::new(2))?;
    Ok((store, proxy, direct))
}

fn ticket(concert: u32, buyer: u32) -> Result<NewEvent, Box<dyn std::error::Error + Send + Sync>> {
    let payload = serde_json::to_vec(&TicketSold { concert, buyer })?;
    Ok(NewEvent::new(EventId::random(), EventType::new("TicketSold")?, payload)
        .with_tags([Tag::new(format!("concert:{concert}"))?]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_whose_answer_was_lost_is_resolved_to_its_original_records() -> TestResult {
    let (store, proxy, direct) = store_behind_proxy().await?;
    // Warm: the connection has its statements prepared, so the marked
    // append is one message carrying the payload.
    store
        .append(AppendRequest::new(StreamId::new("concert-1")?, vec![ticket(1, 1)?]))
        .await?;
    let marked = ticket(1, MARKED_BUYER)?;
    let id = marked.id;
    let request = AppendRequest::new(StreamId::new("concert-1")?, vec![marked])
        .expect(ExpectedRevision::Exact(factos::StreamRevision::new(0)));
    let committed = store.append(request).await?;

    assert!(
        proxy.cut.load(Ordering::SeqCst),
        "the proxy cut the append's connection"
    );
    assert_eq!(proxy.marked.load(Ordering::SeqCst), 2, "sent, then re-sent once");
    let stored = direct.read(&Query::all(), ReadOptions::forwards()).await?;
    assert_eq!(stored.len(), 2, "the batch is stored once");
    assert_eq!(committed.records.len(), 1);
    assert_eq!(committed.records[0].id, id);
    assert_eq!(committed.records[0].position, stored[1].position, "the original record");
    assert_eq!(committed.records[0].revision.value(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_whose_commit_answer_was_lost_is_neither_lost_nor_decided_twice() -> TestResult {
    let (store, proxy, direct) = store_behind_proxy().await?;
    let dispatcher = Dispatcher::new(&store, JsonCodec::<TicketSold>::new());
    // One seat left after this sale: a second decision would be refused.
    dispatcher
        .dispatch_context(
            &box_office(2),
            &Buy { concert: 7, buyer: 1 },
            &concert_query(7),
            &concert_stream(7),
        )
        .await?;
    let sold = dispatcher
        .dispatch_context(
            &box_office(2),
            &Buy {
                concert: 7,
                buyer: MARKED_BUYER,
            },
            &concert_query(7),
            &concert_stream(7),
        )
        .await?;

    assert!(
        proxy.cut.load(Ordering::SeqCst),
        "the proxy cut the commit's connection"
    );
    assert_eq!(proxy.marked.load(Ordering::SeqCst), 2, "committed, then re-sent once");
    assert_eq!(sold.len(), 1);
    let stored = direct.read(&concert_query(7), ReadOptions::forwards()).await?;
    assert_eq!(stored.len(), 2, "both sales stored, once each");
    assert_eq!(stored[1].id, sold[0].id, "the answer is the committed sale");
    Ok(())
}
