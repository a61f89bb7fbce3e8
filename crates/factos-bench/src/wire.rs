//! Round trips and statements per operation, counted on the wire.
//!
//! A proxy between the store and the server reads PostgreSQL's protocol
//! from the client: every `Execute` is a statement run, every `Parse` a
//! statement parsed, every simple `Query` as many statements as it holds.
//! A round trip is the client sending after the server has answered.
//!
//! The client runs on a single-threaded runtime here, so the connection
//! task writes only when the operation waits for an answer: everything an
//! operation pipelines leaves in one write, and a send after an answer is
//! one the operation had to wait for. (On a multi-threaded runtime the
//! connection task may write the first statements of a pipeline before
//! the rest are queued; the client still does not wait between them, but
//! a proxy could no longer tell.) Commit notifications are off: they are
//! a background `NOTIFY` on another connection, coalesced across commits.
//!
//! The counts are held to the ceilings in [`crate::wire_budget`]: the
//! section fails (and with it `--quick` in CI) when one grows.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use factos::{AppendCondition, AppendRequest, Dispatcher, EventStore, JsonCodec, ReadOptions, StreamId};
use factos_postgres::{PgStore, PoolOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};

use crate::durability::Durability;
use crate::raw::RawPg;
use crate::wire_budget::over_budget;
use crate::workload::{Buy, TicketSold, box_office, concert_query, concert_stream, customer_query, order_batch};
use crate::{Config, Report};

/// What the proxy counted.
#[derive(Debug, Default)]
struct Counts {
    round_trips: AtomicU64,
    statements: AtomicU64,
    parses: AtomicU64,
    answered: AtomicBool,
}

impl Counts {
    fn take(&self) -> (u64, u64, u64) {
        (
            self.round_trips.swap(0, Ordering::SeqCst),
            self.statements.swap(0, Ordering::SeqCst),
            self.parses.swap(0, Ordering::SeqCst),
        )
    }
}

/// A counting proxy on a loopback port in front of the server's unix
/// socket in `socket_dir`.
struct Proxy {
    port: u16,
    counts: Arc<Counts>,
}

impl Proxy {
    async fn start(socket_dir: &Path) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let counts = Arc::new(Counts::default());
        let socket = socket_dir.join(".s.PGSQL.5432");
        let shared = Arc::clone(&counts);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (socket, counts) = (socket.clone(), Arc::clone(&shared));
                tokio::spawn(async move {
                    if let Ok(server) = UnixStream::connect(&socket).await {
                        relay(client, server, counts).await;
                    }
                });
            }
        });
        Ok(Self { port, counts })
    }
}

async fn relay(client: TcpStream, server: UnixStream, counts: Arc<Counts>) {
    let _ = client.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream_counts = Arc::clone(&counts);
    let upstream = async move {
        let mut parser = ClientMessages::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if upstream_counts.answered.swap(false, Ordering::SeqCst) {
                upstream_counts.round_trips.fetch_add(1, Ordering::SeqCst);
            }
            parser.feed(&buf[..n], &upstream_counts);
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let downstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            counts.answered.store(true, Ordering::SeqCst);
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::join!(upstream, downstream);
}

/// Splits the client's byte stream into protocol messages and counts them.
#[derive(Default)]
struct ClientMessages {
    pending: Vec<u8>,
    started: bool,
}

impl ClientMessages {
    fn feed(&mut self, bytes: &[u8], counts: &Counts) {
        self.pending.extend_from_slice(bytes);
        loop {
            // The startup message has no type byte; every later one has.
            let header = if self.started { 5 } else { 4 };
            if self.pending.len() < header {
                return;
            }
            let at = header - 4;
            let length = u32::from_be_bytes([
                self.pending[at],
                self.pending[at + 1],
                self.pending[at + 2],
                self.pending[at + 3],
            ]) as usize;
            let total = at + length;
            if self.pending.len() < total {
                return;
            }
            if self.started {
                match self.pending[0] {
                    b'E' => {
                        counts.statements.fetch_add(1, Ordering::SeqCst);
                    }
                    b'P' => {
                        counts.parses.fetch_add(1, Ordering::SeqCst);
                    }
                    b'Q' => {
                        let text = String::from_utf8_lossy(&self.pending[5..total]);
                        let n = text
                            .split(';')
                            .filter(|s| !s.trim_matches(['\0', ' ', '\n']).is_empty())
                            .count();
                        counts.statements.fetch_add(n as u64, Ordering::SeqCst);
                        counts.parses.fetch_add(n as u64, Ordering::SeqCst);
                    }
                    _ => {}
                }
            }
            self.started = true;
            self.pending.drain(..total);
        }
    }
}

/// Per-operation counts of `ops` runs of `operation`.
async fn count<F, Fut>(counts: &Counts, ops: u64, mut operation: F) -> anyhow::Result<[f64; 3]>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    // Warm up: connect, check the schema, prepare.
    for i in 0..3 {
        operation(10_000_000 + i).await?;
    }
    counts.take();
    for i in 0..ops {
        operation(i).await?;
    }
    let (round_trips, statements, parses) = counts.take();
    let per = |n: u64| n as f64 / ops as f64;
    Ok([per(round_trips), per(statements), per(parses)])
}

/// Runs the section (numbered `number`), on a thread of its own with a
/// single-threaded runtime (see the module docs).
pub async fn run(config: &Config, report: &mut Report, number: &str) -> anyhow::Result<()> {
    let ops = config.round_trip_ops;
    let number = number.to_owned();
    let section = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let mut report = Report::default();
            measure(ops, &mut report, &number).await?;
            anyhow::Ok(report)
        })
    })
    .await??;
    report.lines.extend(section.lines);
    Ok(())
}

async fn measure(ops: u64, report: &mut Report, number: &str) -> anyhow::Result<()> {
    report.section(
        &format!("{number} Round trips and statements per operation on PostgreSQL"),
        "Counted, not estimated: a proxy between the client and the server reads the protocol. *round trips*: times the \
         client sent after the server had answered; *statements*: statements executed (each `Execute`, each statement of a \
         simple query: `BEGIN` and the `SET LOCAL`s count); *parsed*: statements the server had to parse (prepared \
         statements are parsed once per connection). One connection, operations one after another, after a warm-up. \
         *prepared*: the default; *unnamed*: `with_prepared_statements(false)`, for transaction-mode poolers.",
        &["operation", "statements", "round trips", "statements run", "statements parsed"],
    );
    let cluster = Durability::Off.cluster()?;
    let Some(dir) = cluster.dir() else {
        report.note("Skipped: the proxy needs the harness's own cluster (FACTOS_TEST_DATABASE_URL is set).");
        return Ok(());
    };
    let proxy = Proxy::start(dir).await?;
    let mut over = Vec::new();
    for prepared in [true, false] {
        let (mut pg, schema) = cluster.fresh_schema().await?;
        pg.host("127.0.0.1").port(proxy.port);
        let store = PgStore::connect_with(pg.clone(), PoolOptions::new(1))?
            .with_prepared_statements(prepared)
            .with_commit_notifications(false);
        store.migrate().await?;
        let mode = if prepared { "prepared" } else { "unnamed" };
        let stream = StreamId::new("orders")?;
        let mut rows = Vec::new();
        for (operation, size) in [("append, 1 event", 1), ("append, 100 events", 100)] {
            let counted = count(&proxy.counts, ops, |i| {
                let (store, stream) = (&store, &stream);
                async move {
                    store
                        .append(order_batch(i.wrapping_mul(1_000), size, 1_000, stream)?)
                        .await?;
                    Ok(())
                }
            })
            .await?;
            rows.push((operation, counted));
        }
        rows.push((
            "conditional append, 1 event",
            count(&proxy.counts, ops, |i| {
                let (store, stream) = (&store, &stream);
                async move {
                    let request: AppendRequest = order_batch(i.wrapping_mul(13), 1, 1_000, stream)?;
                    let condition = AppendCondition::new(customer_query(1_000_000 + i)?, None);
                    store.append(request.condition(condition)).await?;
                    Ok(())
                }
            })
            .await?,
        ));
        rows.push((
            "read of a context",
            count(&proxy.counts, ops, |i| {
                let store = &store;
                async move {
                    store.read(&customer_query(i % 1_000)?, ReadOptions::forwards()).await?;
                    Ok(())
                }
            })
            .await?,
        ));
        rows.push((
            "dispatch_context (decision)",
            count(&proxy.counts, ops, |i| {
                let store = &store;
                async move {
                    let concert = (i % 64) as u32;
                    Dispatcher::new(store, JsonCodec::<TicketSold>::new())
                        .dispatch_context(
                            &box_office(u32::MAX),
                            &Buy {
                                concert,
                                buyer: i as u32,
                            },
                            &concert_query(concert),
                            &concert_stream(concert),
                        )
                        .await?;
                    Ok(())
                }
            })
            .await?,
        ));
        for (operation, measured @ [round_trips, statements, parses]) in rows {
            over.extend(over_budget(operation, mode, measured));
            report.row(&[
                operation.into(),
                mode.into(),
                format!("{round_trips:.2}"),
                format!("{statements:.2}"),
                format!("{parses:.2}"),
            ]);
        }
        drop(schema);
    }
    let (mut pg, _) = cluster.fresh_schema().await?;
    PgStore::connect_with(pg.clone(), PoolOptions::new(1))?
        .migrate()
        .await?;
    pg.host("127.0.0.1").port(proxy.port);
    let raw = tokio::sync::Mutex::new(RawPg::connect(&pg).await?);
    let stream = StreamId::new("orders")?;
    let measured @ [round_trips, statements, parses] = count(&proxy.counts, ops, |i| {
        let (raw, stream) = (&raw, &stream);
        async move {
            raw.lock()
                .await
                .append(&order_batch(i.wrapping_mul(7), 1, 1_000, stream)?)
                .await?;
            Ok(())
        }
    })
    .await?;
    report.row(&[
        "raw baseline append, 1 event".into(),
        "prepared".into(),
        format!("{round_trips:.2}"),
        format!("{statements:.2}"),
        format!("{parses:.2}"),
    ]);
    over.extend(over_budget("raw baseline append, 1 event", "prepared", measured));
    if !over.is_empty() {
        anyhow::bail!(
            "round trips or statements grew past their budget (crates/factos-bench/src/wire_budget.rs):\n{}",
            over.join("\n")
        );
    }
    Ok(())
}
