//! A restaurant order workflow on one stream per order.
//!
//! Place an order, add items, send it to the kitchen, mark it ready, serve
//! it, or cancel it: a state machine whose rules reject commands with domain
//! errors (no items can be added once the order went to the kitchen). Each
//! command is dispatched with `dispatch_stream`: the order's stream is
//! loaded, folded, decided on, and appended to at the revision that was
//! loaded. The events are encoded by the application's own codec, and a
//! kitchen-summary view is folded from the whole log. A durable read model,
//! where each order stands, is kept by a projection in SQLite: in the
//! events' own database, or, when the events live in KurrentDB, in a SQLite
//! file of its own (each batch and the projection's checkpoint committed
//! together there).
//!
//! ```text
//! cargo run --example orders
//! cargo run --features kurrentdb --example orders -- --kurrentdb-url "kurrentdb://admin:changeit@localhost:2113?tls=false" --read-model orders.db
//! ```
//!
//! Every command's consistency boundary is its order's stream, so the
//! example runs unchanged on KurrentDB, whose appends check one stream's
//! revision.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use factos::{
    BoxError, Codec, Decider, Delivered, Dispatcher, EventId, EventStore, EventType, Follow, NewEvent, Projection,
    Projector, Query, ReadOptions, SplitRejection, StoredEvent, StreamId, Tag, View, decider, project, view,
};
#[cfg(feature = "kurrentdb")]
use factos_kurrentdb::KurrentStore;
use factos_sqlite::rusqlite::{Connection, Transaction};
use factos_sqlite::{SqliteProjection, SqliteStore};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
enum Command {
    Place { table: u32 },
    AddItems { items: Vec<String> },
    SendToKitchen,
    MarkReady,
    Serve,
    Cancel { reason: String },
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Placed { order: u32, table: u32 },
    ItemsAdded { order: u32, items: Vec<String> },
    SentToKitchen { order: u32 },
    Ready { order: u32 },
    Served { order: u32 },
    Cancelled { order: u32, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Refused {
    #[error("the order does not exist")]
    NoSuchOrder,
    #[error("the order was already placed")]
    AlreadyPlaced,
    #[error("add at least one item")]
    NoItems,
    #[error("items cannot be added once the order went to the kitchen")]
    AlreadyInKitchen,
    #[error("an order without items cannot go to the kitchen")]
    NothingToCook,
    #[error("the order is not in the kitchen")]
    NotInKitchen,
    #[error("the order is not ready")]
    NotReady,
    #[error("the order is already {0}")]
    Finished(&'static str),
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    New,
    Open,
    InKitchen,
    Ready,
    Served,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq)]
struct Order {
    id: u32,
    stage: Stage,
    items: Vec<String>,
}

fn orders(id: u32) -> impl Decider<Command = Command, State = Order, Event = Event, Error = Refused> {
    decider(
        Order {
            id,
            stage: Stage::New,
            items: Vec::new(),
        },
        |command: &Command, order: &Order| {
            let id = order.id;
            match (command, order.stage) {
                (_, Stage::Served) => Err(Refused::Finished("served")),
                (_, Stage::Cancelled) => Err(Refused::Finished("cancelled")),
                (Command::Place { table }, Stage::New) => Ok(vec![Event::Placed {
                    order: id,
                    table: *table,
                }]),
                (Command::Place { .. }, _) => Err(Refused::AlreadyPlaced),
                (_, Stage::New) => Err(Refused::NoSuchOrder),
                (Command::AddItems { items }, Stage::Open) if items.is_empty() => Err(Refused::NoItems),
                (Command::AddItems { items }, Stage::Open) => Ok(vec![Event::ItemsAdded {
                    order: id,
                    items: items.clone(),
                }]),
                (Command::AddItems { .. }, _) => Err(Refused::AlreadyInKitchen),
                (Command::SendToKitchen, Stage::Open) if order.items.is_empty() => Err(Refused::NothingToCook),
                (Command::SendToKitchen, Stage::Open) => Ok(vec![Event::SentToKitchen { order: id }]),
                (Command::SendToKitchen, _) => Err(Refused::AlreadyInKitchen),
                (Command::MarkReady, Stage::InKitchen) => Ok(vec![Event::Ready { order: id }]),
                (Command::MarkReady, _) => Err(Refused::NotInKitchen),
                (Command::Serve, Stage::Ready) => Ok(vec![Event::Served { order: id }]),
                (Command::Serve, _) => Err(Refused::NotReady),
                (Command::Cancel { reason }, Stage::Open | Stage::InKitchen) => Ok(vec![Event::Cancelled {
                    order: id,
                    reason: reason.clone(),
                }]),
                (Command::Cancel { .. }, Stage::Ready) => Err(Refused::Finished("ready")),
            }
        },
        |mut order: Order, event: &Event| {
            match event {
                Event::Placed { .. } => order.stage = Stage::Open,
                Event::ItemsAdded { items, .. } => order.items.extend(items.iter().cloned()),
                Event::SentToKitchen { .. } => order.stage = Stage::InKitchen,
                Event::Ready { .. } => order.stage = Stage::Ready,
                Event::Served { .. } => order.stage = Stage::Served,
                Event::Cancelled { .. } => order.stage = Stage::Cancelled,
            }
            order
        },
    )
}

/// The application's own encoding: one event type per variant, a small JSON
/// object per payload, and an `order:` tag on every event.
#[derive(Debug, Clone, Copy)]
struct OrderCodec;

#[derive(Debug, thiserror::Error)]
enum CodecError {
    #[error("unknown event type {0}")]
    UnknownType(String),
    #[error("unsupported version {1} of {0}")]
    UnknownVersion(String, u32),
    #[error("malformed payload")]
    Payload(#[from] serde_json::Error),
    #[error("payload lacks field {0}")]
    MissingField(&'static str),
    #[error(transparent)]
    Name(#[from] factos::InvalidName),
}

impl Codec<Event> for OrderCodec {
    type Error = CodecError;

    fn encode(&self, event: &Event) -> Result<NewEvent, CodecError> {
        let (name, order, payload) = match event {
            Event::Placed { order, table } => ("OrderPlaced", order, json!({ "table": table })),
            Event::ItemsAdded { order, items } => ("ItemsAdded", order, json!({ "items": items })),
            Event::SentToKitchen { order } => ("SentToKitchen", order, json!({})),
            Event::Ready { order } => ("OrderReady", order, json!({})),
            Event::Served { order } => ("OrderServed", order, json!({})),
            Event::Cancelled { order, reason } => ("OrderCancelled", order, json!({ "reason": reason })),
        };
        Ok(
            NewEvent::new(EventId::random(), EventType::new(name)?, serde_json::to_vec(&payload)?)
                .with_tags([Tag::new(format!("order:{order}"))?]),
        )
    }

    fn decode(&self, stored: &StoredEvent) -> Result<Event, CodecError> {
        let name = stored.event_type.as_str();
        if stored.version != 1 {
            return Err(CodecError::UnknownVersion(name.to_owned(), stored.version));
        }
        let order = stored
            .tags
            .iter()
            .find_map(|t| t.as_str().strip_prefix("order:")?.parse().ok())
            .ok_or(CodecError::MissingField("order tag"))?;
        let payload: Value = serde_json::from_slice(&stored.event)?;
        let field = |key: &'static str| payload.get(key).cloned().ok_or(CodecError::MissingField(key));
        Ok(match name {
            "OrderPlaced" => Event::Placed {
                order,
                table: serde_json::from_value(field("table")?)?,
            },
            "ItemsAdded" => Event::ItemsAdded {
                order,
                items: serde_json::from_value(field("items")?)?,
            },
            "SentToKitchen" => Event::SentToKitchen { order },
            "OrderReady" => Event::Ready { order },
            "OrderServed" => Event::Served { order },
            "OrderCancelled" => Event::Cancelled {
                order,
                reason: serde_json::from_value(field("reason")?)?,
            },
            other => return Err(CodecError::UnknownType(other.to_owned())),
        })
    }
}

/// What the kitchen needs to know, folded from every order's events.
#[derive(Debug, Clone, Default, PartialEq)]
struct KitchenSummary {
    /// Items to cook, per order in the kitchen.
    cooking: BTreeMap<u32, Vec<String>>,
    /// Orders waiting at the pass.
    ready: Vec<u32>,
    served: usize,
    cancelled: usize,
    /// Items of orders not yet sent to the kitchen.
    open: BTreeMap<u32, Vec<String>>,
}

fn kitchen_summary() -> impl View<State = KitchenSummary, Event = Event> {
    view(
        KitchenSummary::default(),
        |mut summary: KitchenSummary, event: &Event| {
            match event {
                Event::Placed { order, .. } => {
                    summary.open.insert(*order, Vec::new());
                }
                Event::ItemsAdded { order, items } => {
                    summary.open.entry(*order).or_default().extend(items.iter().cloned())
                }
                Event::SentToKitchen { order } => {
                    let items = summary.open.remove(order).unwrap_or_default();
                    summary.cooking.insert(*order, items);
                }
                Event::Ready { order } => {
                    summary.cooking.remove(order);
                    summary.ready.push(*order);
                }
                Event::Served { order } => {
                    summary.ready.retain(|o| o != order);
                    summary.served += 1;
                }
                Event::Cancelled { order, .. } => {
                    summary.open.remove(order);
                    summary.cooking.remove(order);
                    summary.cancelled += 1;
                }
            }
            summary
        },
    )
}

fn order_stream(id: u32) -> anyhow::Result<StreamId> {
    Ok(StreamId::new(format!("order-{id}"))?)
}

async fn handle<S: EventStore>(store: &S, order: u32, command: Command) -> anyhow::Result<Result<(), Refused>> {
    let dispatcher = Dispatcher::new(store, OrderCodec);
    let outcome = dispatcher
        .dispatch_stream(&orders(order), &command, &order_stream(order)?)
        .await;
    Ok(outcome.split_rejection().context("dispatch failed")?.map(drop))
}

async fn summary<S: EventStore>(store: &S) -> anyhow::Result<KitchenSummary> {
    let stored = store.read(&Query::all(), ReadOptions::forwards()).await?;
    let events = stored
        .iter()
        .map(|e| OrderCodec.decode(e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(project(&kitchen_summary(), &events))
}

/// Where each order stands, in table `order_status` of a SQLite database.
struct OrderStatus;

impl Projection for OrderStatus {
    type Event = Event;
    fn name(&self) -> &str {
        "order_status"
    }
    fn query(&self) -> Query {
        Query::all()
    }
}

impl SqliteProjection for OrderStatus {
    fn apply(&mut self, tx: &Transaction<'_>, events: &[Delivered<Event>]) -> Result<(), BoxError> {
        tx.execute(
            "CREATE TABLE IF NOT EXISTS order_status \
             (order_id INTEGER PRIMARY KEY, table_no INTEGER NOT NULL, stage TEXT NOT NULL, items INTEGER NOT NULL)",
            [],
        )?;
        for delivered in events {
            let moved = |order: &u32, stage: &str| {
                tx.execute("UPDATE order_status SET stage = ?2 WHERE order_id = ?1", (order, stage))
            };
            match &delivered.record.event {
                Event::Placed { order, table } => tx.execute(
                    "INSERT INTO order_status (order_id, table_no, stage, items) VALUES (?1, ?2, 'open', 0)",
                    (order, table),
                )?,
                Event::ItemsAdded { order, items } => tx.execute(
                    "UPDATE order_status SET items = items + ?2 WHERE order_id = ?1",
                    (order, i64::try_from(items.len())?),
                )?,
                Event::SentToKitchen { order } => moved(order, "in kitchen")?,
                Event::Ready { order } => moved(order, "ready")?,
                Event::Served { order } => moved(order, "served")?,
                Event::Cancelled { order, .. } => moved(order, "cancelled")?,
            };
        }
        Ok(())
    }

    fn reset(&mut self, tx: &Transaction<'_>) -> Result<(), BoxError> {
        tx.execute("DROP TABLE IF EXISTS order_status", [])?;
        Ok(())
    }
}

/// Brings the order-status read model in `read_models` up to date with
/// the events in `store`, and returns `order → (stage, items)`.
async fn order_status<S: Follow>(store: &S, read_models: &SqliteStore) -> anyhow::Result<BTreeMap<u32, (String, u32)>> {
    Projector::new(store, read_models, OrderStatus, OrderCodec)
        .catch_up()
        .await?;
    let path = read_models
        .path()
        .context("the read model's SQLite store has no file")?;
    let conn = Connection::open(path)?;
    let mut select = conn.prepare("SELECT order_id, stage, items FROM order_status ORDER BY order_id")?;
    let rows = select.query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[derive(Debug, Parser)]
#[command(about = "A restaurant order workflow, one stream per order.")]
struct Args {
    /// The SQLite database file; a fresh one in a temporary directory if
    /// neither this nor --kurrentdb-url is given.
    #[arg(long, conflicts_with = "kurrentdb_url")]
    database: Option<PathBuf>,
    /// A KurrentDB connection string
    /// (kurrentdb://admin:changeit@localhost:2113?tls=false).
    #[arg(long)]
    kurrentdb_url: Option<String>,
    /// With --kurrentdb-url: the SQLite file that keeps the order-status
    /// read model (a fresh one in a temporary directory if not given).
    #[arg(long, requires = "kurrentdb_url")]
    read_model: Option<PathBuf>,
}

#[path = "../logging.rs"]
mod logging;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    logging::init_tracing();
    let args = Args::parse();
    let scratch = tempfile::tempdir()?;
    #[cfg(not(feature = "kurrentdb"))]
    if args.kurrentdb_url.is_some() {
        anyhow::bail!(
            "--kurrentdb-url needs the example built with its backend: cargo run --features kurrentdb --example orders"
        );
    }
    #[cfg(feature = "kurrentdb")]
    if let Some(url) = &args.kurrentdb_url {
        let store = KurrentStore::connect(url).context("--kurrentdb-url")?;
        let path = args
            .read_model
            .unwrap_or_else(|| scratch.path().join("orders-read-model.db"));
        let read_models = open_sqlite(&path).await?;
        println!("store: KurrentDB; read model: SQLite at {}", path.display());
        return run(&store, &read_models).await;
    }
    let path = args.database.unwrap_or_else(|| scratch.path().join("orders.db"));
    let store = open_sqlite(&path).await?;
    println!("store and read model: SQLite at {}", path.display());
    run(&store, &store).await
}

async fn open_sqlite(path: &std::path::Path) -> anyhow::Result<SqliteStore> {
    let store = SqliteStore::open(path).with_context(|| format!("opening {}", path.display()))?;
    store.migrate().await?;
    Ok(store)
}

/// Runs the script of commands against `store`, prints the kitchen, and
/// prints where each order stands from the read model in `read_models`.
async fn run<S: EventStore + Follow>(store: &S, read_models: &SqliteStore) -> anyhow::Result<()> {
    let items = |names: &[&str]| Command::AddItems {
        items: names.iter().map(|n| n.to_string()).collect(),
    };
    let script = [
        (1, Command::Place { table: 4 }),
        (1, items(&["soup", "bread"])),
        (2, Command::Place { table: 7 }),
        (2, items(&["steak"])),
        (1, Command::SendToKitchen),
        (1, items(&["dessert"])),
        (3, Command::Place { table: 2 }),
        (3, items(&["salad"])),
        (2, Command::SendToKitchen),
        (1, Command::MarkReady),
        (1, Command::Serve),
        (
            3,
            Command::Cancel {
                reason: "guest left".into(),
            },
        ),
        (4, Command::Serve),
    ];
    for (order, command) in script {
        let outcome = handle(store, order, command.clone()).await?;
        match outcome {
            Ok(()) => println!("order {order}: {command:?} -> ok"),
            Err(refused) => println!("order {order}: {command:?} -> refused: {refused}"),
        }
    }
    println!("kitchen: {:#?}", summary(store).await?);
    for (order, (stage, items)) in order_status(store, read_models).await? {
        println!("read model: order {order} is {stage} with {items} item(s)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fresh_store(dir: &tempfile::TempDir) -> anyhow::Result<SqliteStore> {
        let store = SqliteStore::open(dir.path().join("orders.db"))?;
        store.migrate().await?;
        Ok(store)
    }

    fn add(items: &[&str]) -> Command {
        Command::AddItems {
            items: items.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn an_order_goes_through_its_stages_and_refuses_out_of_order_commands() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        stages(&fresh_store(&dir).await?).await
    }

    #[cfg(feature = "kurrentdb")]
    #[tokio::test]
    async fn the_same_workflow_runs_on_kurrentdb_with_its_read_model_in_sqlite() -> anyhow::Result<()> {
        // The in-process KurrentDB protocol server the backend is tested on.
        let server = factos_test_kurrentdb::FakeKurrentDb::start().await?;
        let store = KurrentStore::connect(&server.connection_string())?;
        let dir = tempfile::tempdir()?;
        let read_models = open_sqlite(&dir.path().join("read-model.db")).await?;
        stages(&store).await?;
        assert_eq!(
            order_status(&store, &read_models).await?,
            BTreeMap::from([(1, ("served".to_string(), 1))])
        );
        run(&store, &read_models).await?;
        let status = order_status(&store, &read_models).await?;
        assert_eq!(status.len(), 3, "orders 1 to 3 were placed: {status:?}");
        assert_eq!(
            status[&1],
            ("served".to_string(), 1),
            "the script could not change order 1"
        );
        assert_eq!(status[&2], ("in kitchen".to_string(), 1));
        assert_eq!(status[&3], ("cancelled".to_string(), 1));
        Ok(())
    }

    #[cfg(feature = "kurrentdb")]
    #[tokio::test]
    async fn a_projector_follows_kurrentdb_on_a_task_of_its_own() -> anyhow::Result<()> {
        let server = factos_test_kurrentdb::FakeKurrentDb::start().await?;
        let store = KurrentStore::connect(&server.connection_string())?;
        let dir = tempfile::tempdir()?;
        let read_models = open_sqlite(&dir.path().join("read-model.db")).await?;
        let follower = {
            let (store, read_models) = (store.clone(), read_models.clone());
            tokio::spawn(async move {
                Projector::new(&store, &read_models, OrderStatus, OrderCodec)
                    .run()
                    .await
            })
        };
        handle(&store, 9, Command::Place { table: 1 }).await??;
        let conn = Connection::open(dir.path().join("read-model.db"))?;
        let stage = async {
            loop {
                let stage: Option<String> = conn
                    .query_row("SELECT stage FROM order_status WHERE order_id = 9", [], |row| {
                        row.get(0)
                    })
                    .ok();
                if let Some(stage) = stage {
                    return stage;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        let stage = tokio::time::timeout(std::time::Duration::from_secs(10), stage).await?;
        assert_eq!(stage, "open");
        follower.abort();
        Ok(())
    }

    async fn stages<S: EventStore>(store: &S) -> anyhow::Result<()> {
        assert_eq!(handle(store, 1, add(&["soup"])).await?, Err(Refused::NoSuchOrder));
        assert_eq!(handle(store, 1, Command::Place { table: 4 }).await?, Ok(()));
        assert_eq!(
            handle(store, 1, Command::Place { table: 4 }).await?,
            Err(Refused::AlreadyPlaced)
        );
        assert_eq!(
            handle(store, 1, Command::SendToKitchen).await?,
            Err(Refused::NothingToCook)
        );
        assert_eq!(handle(store, 1, add(&[])).await?, Err(Refused::NoItems));
        assert_eq!(handle(store, 1, add(&["soup"])).await?, Ok(()));
        assert_eq!(handle(store, 1, Command::Serve).await?, Err(Refused::NotReady));
        assert_eq!(handle(store, 1, Command::SendToKitchen).await?, Ok(()));
        assert_eq!(handle(store, 1, add(&["bread"])).await?, Err(Refused::AlreadyInKitchen));
        assert_eq!(handle(store, 1, Command::MarkReady).await?, Ok(()));
        assert_eq!(
            handle(store, 1, Command::Cancel { reason: "late".into() }).await?,
            Err(Refused::Finished("ready"))
        );
        assert_eq!(handle(store, 1, Command::Serve).await?, Ok(()));
        assert_eq!(
            handle(store, 1, Command::MarkReady).await?,
            Err(Refused::Finished("served"))
        );
        let loaded = Dispatcher::new(store, OrderCodec)
            .load_stream(&orders(1), &order_stream(1)?)
            .await?;
        assert_eq!(
            (loaded.state.stage, loaded.revision.map(|r| r.value())),
            (Stage::Served, Some(4))
        );
        Ok(())
    }

    #[tokio::test]
    async fn kitchen_summary_follows_every_order() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = fresh_store(&dir).await?;
        for (order, command) in [
            (1, Command::Place { table: 1 }),
            (1, add(&["soup", "bread"])),
            (1, Command::SendToKitchen),
            (2, Command::Place { table: 2 }),
            (2, add(&["tea"])),
            (3, Command::Place { table: 3 }),
            (3, add(&["cake"])),
            (
                3,
                Command::Cancel {
                    reason: "changed mind".into(),
                },
            ),
        ] {
            handle(&store, order, command).await?.map_err(anyhow::Error::from)?;
        }
        let summary = summary(&store).await?;
        assert_eq!(
            summary.cooking,
            BTreeMap::from([(1, vec!["soup".to_string(), "bread".to_string()])])
        );
        assert_eq!(summary.open, BTreeMap::from([(2, vec!["tea".to_string()])]));
        assert_eq!((summary.served, summary.cancelled), (0, 1));
        Ok(())
    }

    #[test]
    fn codec_round_trips_and_rejects_unknown_types() -> anyhow::Result<()> {
        let event = Event::ItemsAdded {
            order: 7,
            items: vec!["tea".into()],
        };
        let new = OrderCodec.encode(&event)?;
        let stored = factos::Recorded {
            position: factos::Position::new(1),
            id: new.id,
            stream: order_stream(7)?,
            revision: factos::StreamRevision::FIRST,
            event_type: new.event_type.clone(),
            version: new.version,
            tags: new.tags.clone(),
            metadata: new.metadata.clone(),
            recorded_at: factos::Timestamp::UNIX_EPOCH,
            event: new.data.clone(),
        };
        assert_eq!(OrderCodec.decode(&stored)?, event);
        let unknown = factos::Recorded {
            event_type: EventType::new("Mystery")?,
            ..stored
        };
        assert!(matches!(OrderCodec.decode(&unknown), Err(CodecError::UnknownType(_))));
        Ok(())
    }
}
