//! Username registration where the consistency boundary is the username.
//!
//! Registering reserves the name (`UsernameReserved`) and registers the user
//! (`UserRegistered`) in one decision whose context is "events tagged with
//! this username or this user". Two concurrent registrations of one name
//! accept exactly one; registrations of different names share no boundary
//! and never conflict. Changing a display name only needs the user's events.
//!
//! Runs on SQLite: a database file in a temporary directory unless
//! `--database PATH` names one; `--database-url postgres://...` runs it
//! unchanged on PostgreSQL. With `--kurrentdb-url` it shows why it cannot
//! run on KurrentDB: "a username is taken once" spans every user's
//! stream, KurrentDB's appends check one stream's revision, and the
//! backend refuses the decision rather than ignore its condition.
//!
//! ```text
//! cargo run --example usernames
//! cargo run --features kurrentdb --example usernames -- --kurrentdb-url "kurrentdb://admin:changeit@localhost:2113?tls=false"
//! ```

use anyhow::Context as _;
use clap::Parser;
use factos::{
    Decider, Dispatcher, EventStore, JsonCodec, JsonEvent, Query, QueryItem, SplitRejection, StreamId, Tag, decider,
};
#[cfg(feature = "kurrentdb")]
use factos_kurrentdb::KurrentStore;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
enum Event {
    UsernameReserved { username: String, user: u64 },
    UserRegistered { user: u64, display_name: String },
    DisplayNameChanged { user: u64, display_name: String },
}

impl JsonEvent for Event {
    fn event_type(&self) -> &'static str {
        match self {
            Event::UsernameReserved { .. } => "UsernameReserved",
            Event::UserRegistered { .. } => "UserRegistered",
            Event::DisplayNameChanged { .. } => "DisplayNameChanged",
        }
    }
    fn tags(&self) -> Vec<String> {
        match self {
            Event::UsernameReserved { username, user } => vec![format!("username:{username}"), format!("user:{user}")],
            Event::UserRegistered { user, .. } | Event::DisplayNameChanged { user, .. } => vec![format!("user:{user}")],
        }
    }
}

#[derive(Debug, Clone)]
enum Command {
    Register {
        user: u64,
        username: String,
        display_name: String,
    },
    ChangeDisplayName {
        user: u64,
        display_name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Rejected {
    #[error("the username {0:?} is taken")]
    UsernameTaken(String),
    #[error("user {0} is already registered")]
    AlreadyRegistered(u64),
    #[error("user {0} is not registered")]
    UnknownUser(u64),
    #[error("a display name must not be empty")]
    EmptyDisplayName,
}

/// What a decision needs to know about its boundary.
#[derive(Debug, Clone, Default)]
struct Seen {
    username_taken: bool,
    user_registered: bool,
}

fn users() -> impl Decider<Command = Command, State = Seen, Event = Event, Error = Rejected> {
    decider(
        Seen::default(),
        |command: &Command, seen: &Seen| match command {
            Command::Register {
                user,
                username,
                display_name,
            } => {
                if seen.username_taken {
                    return Err(Rejected::UsernameTaken(username.clone()));
                }
                if seen.user_registered {
                    return Err(Rejected::AlreadyRegistered(*user));
                }
                if display_name.trim().is_empty() {
                    return Err(Rejected::EmptyDisplayName);
                }
                Ok(vec![
                    Event::UsernameReserved {
                        username: username.clone(),
                        user: *user,
                    },
                    Event::UserRegistered {
                        user: *user,
                        display_name: display_name.clone(),
                    },
                ])
            }
            Command::ChangeDisplayName { user, display_name } => {
                if !seen.user_registered {
                    return Err(Rejected::UnknownUser(*user));
                }
                if display_name.trim().is_empty() {
                    return Err(Rejected::EmptyDisplayName);
                }
                Ok(vec![Event::DisplayNameChanged {
                    user: *user,
                    display_name: display_name.clone(),
                }])
            }
        },
        |mut seen: Seen, event: &Event| {
            match event {
                Event::UsernameReserved { .. } => seen.username_taken = true,
                Event::UserRegistered { .. } => seen.user_registered = true,
                Event::DisplayNameChanged { .. } => {}
            }
            seen
        },
    )
}

/// The consistency boundary of `command`.
fn boundary(command: &Command) -> anyhow::Result<(Query, StreamId)> {
    let user_events = |user: u64| -> anyhow::Result<QueryItem> {
        Ok(QueryItem::types(["UserRegistered".parse()?]).with_tags([Tag::new(format!("user:{user}"))?]))
    };
    Ok(match command {
        Command::Register { user, username, .. } => (
            Query::new([
                QueryItem::types(["UsernameReserved".parse()?]).with_tags([Tag::new(format!("username:{username}"))?]),
                user_events(*user)?,
            ]),
            StreamId::new(format!("user-{user}"))?,
        ),
        Command::ChangeDisplayName { user, .. } => {
            (Query::from(user_events(*user)?), StreamId::new(format!("user-{user}"))?)
        }
    })
}

async fn handle<S: EventStore>(store: &S, command: &Command) -> anyhow::Result<Result<usize, Rejected>> {
    let (query, stream) = boundary(command)?;
    let dispatched = Dispatcher::new(store, JsonCodec::new())
        .dispatch_context(&users(), command, &query, &stream)
        .await;
    Ok(dispatched
        .split_rejection()
        .context("dispatch failed")?
        .map(|committed| committed.len()))
}

#[cfg(feature = "kurrentdb")]
/// What this example meets on KurrentDB: the refusal of its first
/// registration, explained, with the error value.
async fn refusal(store: &KurrentStore) -> anyhow::Result<String> {
    let command = register(1, "ada");
    let (query, stream) = boundary(&command)?;
    match Dispatcher::new(store, JsonCodec::new())
        .dispatch_context(&users(), &command, &query, &stream)
        .await
    {
        Err(
            error @ factos::Error::Store {
                source: factos::StoreError::UnsupportedCondition(_),
                ..
            },
        ) => Ok(format!(
            "registering \"ada\" was refused, and nothing was written.\n\
             \"A username is taken once\" is a rule over the events of every user's stream, so it needs an \
             append that fails if a matching event arrived after the decision read: a query condition. KurrentDB \
             checks one stream's revision per append; run this rule on a backend that enforces query conditions \
             (SQLite, PostgreSQL).\n\
             error: {error}\n\
             value: {error:?}"
        )),
        other => anyhow::bail!("expected KurrentDB to refuse the registration, got {other:?}"),
    }
}

fn register(user: u64, username: &str) -> Command {
    Command::Register {
        user,
        username: username.into(),
        display_name: format!("User {user}"),
    }
}

#[path = "../support.rs"]
mod support;

#[derive(Debug, Parser)]
#[command(about = "Username registration with the username as the consistency boundary.")]
struct Args {
    #[command(flatten)]
    store: support::StoreArgs,
    /// A KurrentDB connection string: shows the refusal.
    #[arg(long, conflicts_with_all = ["database", "database_url"])]
    kurrentdb_url: Option<String>,
}

#[path = "../logging.rs"]
mod logging;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    logging::init_tracing();
    let args = Args::parse();
    if let Some(url) = &args.kurrentdb_url {
        #[cfg(not(feature = "kurrentdb"))]
        return Err(support::not_built_with("kurrentdb", "--kurrentdb-url").context(url.clone()));
        #[cfg(feature = "kurrentdb")]
        {
            let store = KurrentStore::connect(url).context("--kurrentdb-url")?;
            println!("store: KurrentDB");
            println!("{}", refusal(&store).await?);
            return Ok(());
        }
    }
    match args.store.open("usernames").await? {
        support::Store::Sqlite(store, _scratch) => demo(&store).await,
        #[cfg(feature = "postgres")]
        support::Store::Postgres(store) => demo(&store).await,
    }
}

async fn demo<S: EventStore + Sync>(store: &S) -> anyhow::Result<()> {
    let (ada_1, ada_2) = (register(1, "ada"), register(2, "ada"));
    let (first, second) = tokio::join!(handle(store, &ada_1), handle(store, &ada_2));
    println!("two concurrent registrations of \"ada\": {:?} / {:?}", first?, second?);

    let (grace, linus) = (register(3, "grace"), register(4, "linus"));
    let (grace, linus) = tokio::join!(handle(store, &grace), handle(store, &linus));
    println!("\"grace\" and \"linus\" at the same time: {:?} / {:?}", grace?, linus?);

    let renamed = handle(
        store,
        &Command::ChangeDisplayName {
            user: 3,
            display_name: "Admiral Hopper".into(),
        },
    )
    .await?;
    println!("user 3 changes display name: {renamed:?}");
    let unknown = handle(
        store,
        &Command::ChangeDisplayName {
            user: 99,
            display_name: "Nobody".into(),
        },
    )
    .await?;
    println!("user 99 changes display name: {unknown:?}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use factos_sqlite::SqliteStore;

    async fn fresh_store(dir: &tempfile::TempDir) -> anyhow::Result<SqliteStore> {
        let store = SqliteStore::open(dir.path().join("usernames.db"))?;
        store.migrate().await?;
        Ok(store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_registrations_of_one_name_accept_exactly_one() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = fresh_store(&dir).await?;
        let attempts = (0..16u64).map(|user| {
            let store = store.clone();
            tokio::spawn(async move { handle(&store, &register(user, "ada")).await })
        });
        let mut accepted = 0;
        for attempt in attempts.collect::<Vec<_>>() {
            match attempt.await?? {
                Ok(_) => accepted += 1,
                Err(rejected) => assert_eq!(rejected, Rejected::UsernameTaken("ada".into())),
            }
        }
        assert_eq!(accepted, 1);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn different_names_never_conflict() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        unique_names_register_without_retries(fresh_store(&dir).await?).await
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn different_names_never_conflict_on_postgres() -> anyhow::Result<()> {
        let (config, _) = factos_test_postgres::Cluster::shared()?.fresh_schema().await?;
        let store = factos_postgres::PgStore::connect_with(config, factos_postgres::PoolOptions::new(20))?;
        store.migrate().await?;
        unique_names_register_without_retries(store).await
    }

    /// 16 concurrent registrations of distinct names all succeed on their
    /// first attempt: they share no consistency boundary.
    async fn unique_names_register_without_retries<S>(store: S) -> anyhow::Result<()>
    where
        S: EventStore + Clone + Send + Sync + 'static,
        S::Transaction: Send,
    {
        let attempts = (0..16u64).map(|user| {
            let store = store.clone();
            tokio::spawn(async move {
                let (query, stream) = boundary(&register(user, &format!("name-{user}")))?;
                Dispatcher::new(&store, JsonCodec::new())
                    .with_retry(factos::RetryPolicy::none())
                    .dispatch_context(&users(), &register(user, &format!("name-{user}")), &query, &stream)
                    .await
                    .context("a registration of a unique name failed without retries")
            })
        });
        for attempt in attempts.collect::<Vec<_>>() {
            assert_eq!(attempt.await??.len(), 2);
        }
        Ok(())
    }

    #[tokio::test]
    async fn rules_reject_with_domain_errors() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = fresh_store(&dir).await?;
        assert_eq!(handle(&store, &register(1, "ada")).await?, Ok(2));
        assert_eq!(
            handle(&store, &register(1, "bob")).await?,
            Err(Rejected::AlreadyRegistered(1))
        );
        let rename = |name: &str| Command::ChangeDisplayName {
            user: 1,
            display_name: name.into(),
        };
        assert_eq!(handle(&store, &rename("  ")).await?, Err(Rejected::EmptyDisplayName));
        assert_eq!(handle(&store, &rename("Ada L.")).await?, Ok(1));
        let stranger = Command::ChangeDisplayName {
            user: 2,
            display_name: "X".into(),
        };
        assert_eq!(handle(&store, &stranger).await?, Err(Rejected::UnknownUser(2)));
        Ok(())
    }

    #[cfg(feature = "kurrentdb")]
    #[tokio::test]
    async fn kurrentdb_refuses_the_rule_and_says_why() -> anyhow::Result<()> {
        // The in-process KurrentDB protocol server the backend is tested on.
        let server = factos_test_kurrentdb::FakeKurrentDb::start().await?;
        let store = KurrentStore::connect(&server.connection_string())?;
        let message = refusal(&store).await?;
        use factos::ReadOptions;
        assert!(
            message.contains("query condition") && message.contains("UnsupportedCondition"),
            "{message}"
        );
        assert!(store.read(&Query::all(), ReadOptions::forwards()).await?.is_empty());
        Ok(())
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_name_one_winner_on_postgres() -> anyhow::Result<()> {
        let (config, _) = factos_test_postgres::Cluster::shared()?.fresh_schema().await?;
        let store = factos_postgres::PgStore::connect_with(config, factos_postgres::PoolOptions::new(20))?;
        store.migrate().await?;
        let attempts = (0..16u64).map(|user| {
            let store = store.clone();
            tokio::spawn(async move { handle(&store, &register(user, "ada")).await })
        });
        let mut accepted = 0;
        for attempt in attempts.collect::<Vec<_>>() {
            accepted += usize::from(attempt.await??.is_ok());
        }
        assert_eq!(accepted, 1);
        Ok(())
    }
}
