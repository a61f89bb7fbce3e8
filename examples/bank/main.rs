//! Bank transfers with a daily limit, decided on contexts composed of facts.
//!
//! Commands: open an account (initial balance, daily limit), deposit,
//! withdraw, transfer. Rules: the accounts exist, amounts are positive, a
//! balance never goes negative, and withdrawals plus outgoing transfers of
//! one calendar day never exceed the account's daily limit.
//!
//! Each rule reads a *fact*: "account X exists", "the balance of X", "the
//! daily limit of X", "what X spent on day D". Withdraw and transfer reuse
//! the same facts; a transfer uses the existence fact twice, for the source
//! and the target. The spending fact selects its events with a SQL predicate
//! on the JSON payload (`day` and the debited account were not written as
//! tags), so this example is tied to SQL backends: SQLite by default,
//! PostgreSQL with `--database-url`.
//!
//! ```text
//! cargo run --example bank
//! ```

use std::collections::BTreeMap;

use anyhow::Context as _;
use clap::Parser;
use factos::{
    Dispatcher, EventStore, JsonCodec, JsonEvent, Predicate, PredicateValue, Query, QueryItem, ReadOptions, Recorded,
    SplitRejection, StreamId, Tag, View, fact, facts, handler, project, view,
};
use serde::{Deserialize, Serialize};

#[path = "../support.rs"]
mod support;

#[path = "../read_model.rs"]
mod read_model;

/// The accounts' balances as a durable projection: the same fold as the
/// `balances` view, kept in a table next to the events.
struct Balances;

impl read_model::Counters for Balances {
    type Event = Event;
    fn name(&self) -> &'static str {
        "balances"
    }
    fn query(&self) -> Query {
        bank_query()
    }
    fn changes(&self, recorded: &Recorded<Event>) -> Vec<(i64, i64)> {
        touched(&recorded.event)
            .into_iter()
            .map(|account| (i64::from(account), recorded.event.balance_change(account)))
            .collect()
    }
}

/// A notice the bank sends for every large transfer: an effect value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LargeTransferNotice {
    from: u32,
    to: u32,
    amount: i64,
}

/// Transfers of at least this much call for a notice.
const LARGE: i64 = 100;

fn large_transfers() -> impl factos::Reactor<Event = Event, Effect = LargeTransferNotice> {
    factos::reactor(|recorded: &Recorded<Event>| match recorded.event {
        Event::Transferred { from, to, amount, .. } if amount >= LARGE => {
            vec![LargeTransferNotice { from, to, amount }]
        }
        _ => Vec::new(),
    })
}

/// Sends (prints) every large-transfer notice not sent yet, each once per
/// idempotency key; returns how many it sent.
async fn send_notices<S>(store: &S, sent: &mut std::collections::BTreeSet<factos::EffectKey>) -> anyhow::Result<usize>
where
    S: factos::Follow + factos::Checkpoints + Sync,
{
    let runner = factos_effects::EffectRunner::new(
        store,
        "large-transfer-notices",
        bank_query(),
        large_transfers(),
        JsonCodec::new(),
    );
    let report = runner
        .run_available(|key, notice: LargeTransferNotice| {
            // The mail system would drop a key it has seen; this one prints
            // each key once.
            if sent.insert(key) {
                println!(
                    "notice {key}: {} moved {} to account {}",
                    notice.from, notice.amount, notice.to
                );
            }
            async { Ok::<(), std::convert::Infallible>(()) }
        })
        .await?;
    Ok(report.delivered)
}

/// The events, stored as internally tagged JSON: `{"type": "Withdrawn", "account": 1, …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
enum Event {
    AccountOpened {
        account: u32,
        balance: i64,
        daily_limit: i64,
    },
    Deposited {
        account: u32,
        amount: i64,
    },
    Withdrawn {
        account: u32,
        amount: i64,
        day: i64,
    },
    Transferred {
        from: u32,
        to: u32,
        amount: i64,
        day: i64,
    },
}

impl JsonEvent for Event {
    fn event_type(&self) -> &'static str {
        match self {
            Event::AccountOpened { .. } => "AccountOpened",
            Event::Deposited { .. } => "Deposited",
            Event::Withdrawn { .. } => "Withdrawn",
            Event::Transferred { .. } => "Transferred",
        }
    }
    fn tags(&self) -> Vec<String> {
        match self {
            Event::AccountOpened { account, .. }
            | Event::Deposited { account, .. }
            | Event::Withdrawn { account, .. } => {
                vec![account_tag(*account)]
            }
            Event::Transferred { from, to, .. } => vec![account_tag(*from), account_tag(*to)],
        }
    }
}

impl Event {
    /// The change to `account`'s balance.
    fn balance_change(&self, account: u32) -> i64 {
        match *self {
            Event::AccountOpened { balance, .. } => balance,
            Event::Deposited { amount, .. } => amount,
            Event::Withdrawn { amount, .. } => -amount,
            Event::Transferred { from, amount, .. } if from == account => -amount,
            Event::Transferred { amount, .. } => amount,
        }
    }

    /// What `account` spent by this event on `day` (withdrawals and outgoing
    /// transfers count against the daily limit).
    fn spent(&self, account: u32, on: i64) -> i64 {
        match *self {
            Event::Withdrawn {
                account: a,
                amount,
                day,
            } if a == account && day == on => amount,
            Event::Transferred { from, amount, day, .. } if from == account && day == on => amount,
            _ => 0,
        }
    }
}

fn account_tag(account: u32) -> String {
    format!("account:{account}")
}

#[derive(Debug, Clone)]
enum Command {
    Open {
        account: u32,
        balance: i64,
        daily_limit: i64,
    },
    Deposit {
        account: u32,
        amount: i64,
    },
    Withdraw {
        account: u32,
        amount: i64,
        day: i64,
    },
    Transfer {
        from: u32,
        to: u32,
        amount: i64,
        day: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Refused {
    #[error("account {0} does not exist")]
    UnknownAccount(u32),
    #[error("account {0} is already open")]
    AlreadyOpen(u32),
    #[error("amounts must be positive")]
    NonPositiveAmount,
    #[error("a transfer needs two different accounts")]
    SameAccount,
    #[error("insufficient funds: {available} available, {requested} requested")]
    InsufficientFunds { available: i64, requested: i64 },
    #[error("daily limit {limit} exceeded: {spent} spent today, {requested} requested")]
    DailyLimitExceeded { limit: i64, spent: i64, requested: i64 },
}

/// What a decision knows about one account.
#[derive(Debug, Clone, Default, PartialEq)]
struct Account {
    exists: bool,
    balance: i64,
    daily_limit: i64,
    spent_today: i64,
}

/// The decision context: the account debited (or opened, or credited) and,
/// for transfers, the account credited.
#[derive(Debug, Clone, Default, PartialEq)]
struct Accounts {
    source: Account,
    target: Account,
}

type Lens = fn(&mut Accounts) -> &mut Account;

fn source(accounts: &mut Accounts) -> &mut Account {
    &mut accounts.source
}

fn target(accounts: &mut Accounts) -> &mut Account {
    &mut accounts.target
}

fn on_account(account: u32, types: &[&str]) -> anyhow::Result<QueryItem> {
    Ok(
        QueryItem::types(types.iter().map(|t| t.parse()).collect::<Result<Vec<_>, _>>()?)
            .with_tags([Tag::new(account_tag(account))?]),
    )
}

/// Which SQL the spending fact's predicate is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// The facts, each a reusable constructor: a query plus a fold into the part
/// of the context that `lens` picks.
mod facts_of {
    use super::*;

    /// Account `account` exists (and its daily limit, set when opened).
    pub fn opened(account: u32, lens: Lens) -> anyhow::Result<factos::Fact<impl Fn(&mut Accounts, &Recorded<Event>)>> {
        Ok(fact(
            on_account(account, &["AccountOpened"])?,
            move |ctx: &mut Accounts, e: &Recorded<Event>| {
                if let Event::AccountOpened { daily_limit, .. } = e.event {
                    let account = lens(ctx);
                    account.exists = true;
                    account.daily_limit = daily_limit;
                }
            },
        ))
    }

    /// The balance of `account`.
    pub fn balance(account: u32, lens: Lens) -> anyhow::Result<factos::Fact<impl Fn(&mut Accounts, &Recorded<Event>)>> {
        let types = ["AccountOpened", "Deposited", "Withdrawn", "Transferred"];
        Ok(fact(
            on_account(account, &types)?,
            move |ctx: &mut Accounts, e: &Recorded<Event>| {
                lens(ctx).balance += e.event.balance_change(account);
            },
        ))
    }

    /// What `account` spent on `day`: its withdrawals and outgoing transfers
    /// of that day, selected in SQL by the payload's `day` and debited
    /// account. The fold checks the same on each event, since the balance
    /// fact brings in the account's other events too.
    pub fn spent_on(
        account: u32,
        day: i64,
        dialect: Dialect,
        lens: Lens,
    ) -> anyhow::Result<factos::Fact<impl Fn(&mut Accounts, &Recorded<Event>)>> {
        let sql = match dialect {
            Dialect::Sqlite => {
                "json_extract(data, '$.day') = $1 AND coalesce(json_extract(data, '$.from'), json_extract(data, '$.account')) = $2"
            }
            #[cfg(feature = "postgres")]
            Dialect::Postgres => {
                "(convert_from(data, 'UTF8')::jsonb ->> 'day')::int8 = $1 \
                 AND coalesce(convert_from(data, 'UTF8')::jsonb ->> 'from', convert_from(data, 'UTF8')::jsonb ->> 'account')::int8 = $2"
            }
        };
        let predicate = Predicate::new(
            sql,
            [
                PredicateValue::Integer(day),
                PredicateValue::Integer(i64::from(account)),
            ],
        );
        let item = on_account(account, &["Withdrawn", "Transferred"])?.with_predicate(predicate);
        Ok(fact(item, move |ctx: &mut Accounts, e: &Recorded<Event>| {
            lens(ctx).spent_today += e.event.spent(account, day);
        }))
    }
}

fn positive(amount: i64) -> Result<(), Refused> {
    if amount > 0 {
        Ok(())
    } else {
        Err(Refused::NonPositiveAmount)
    }
}

fn existing(account: &Account, id: u32) -> Result<(), Refused> {
    if account.exists {
        Ok(())
    } else {
        Err(Refused::UnknownAccount(id))
    }
}

/// The debit rules shared by withdrawals and transfers.
fn may_debit(account: &Account, amount: i64) -> Result<(), Refused> {
    if account.balance < amount {
        return Err(Refused::InsufficientFunds {
            available: account.balance,
            requested: amount,
        });
    }
    if account.spent_today + amount > account.daily_limit {
        return Err(Refused::DailyLimitExceeded {
            limit: account.daily_limit,
            spent: account.spent_today,
            requested: amount,
        });
    }
    Ok(())
}

/// Decides `command` on the store: builds the command's facts, reads their
/// union once, decides, appends on the condition that none of it changed.
async fn handle<S: EventStore>(
    store: &S,
    dialect: Dialect,
    command: &Command,
) -> anyhow::Result<Result<Vec<Event>, Refused>> {
    let dispatcher = Dispatcher::new(store, JsonCodec::new());
    let outcome = match *command {
        Command::Open {
            account,
            balance,
            daily_limit,
        } => {
            let h = handler(
                Accounts::default(),
                facts(facts_of::opened(account, source)?),
                move |_: &Command, ctx: &Accounts| {
                    if ctx.source.exists {
                        return Err(Refused::AlreadyOpen(account));
                    }
                    if balance < 0 || daily_limit < 0 {
                        return Err(Refused::NonPositiveAmount);
                    }
                    Ok(vec![Event::AccountOpened {
                        account,
                        balance,
                        daily_limit,
                    }])
                },
            );
            dispatcher
                .dispatch_context(&h, command, &h.query(), &stream(account)?)
                .await
        }
        Command::Deposit { account, amount } => {
            let h = handler(
                Accounts::default(),
                facts(facts_of::opened(account, source)?),
                move |_: &Command, ctx: &Accounts| {
                    positive(amount)?;
                    existing(&ctx.source, account)?;
                    Ok(vec![Event::Deposited { account, amount }])
                },
            );
            dispatcher
                .dispatch_context(&h, command, &h.query(), &stream(account)?)
                .await
        }
        Command::Withdraw { account, amount, day } => {
            let debit_facts = facts(facts_of::opened(account, source)?)
                .with(facts_of::balance(account, source)?)
                .with(facts_of::spent_on(account, day, dialect, source)?);
            let h = handler(Accounts::default(), debit_facts, move |_: &Command, ctx: &Accounts| {
                positive(amount)?;
                existing(&ctx.source, account)?;
                may_debit(&ctx.source, amount)?;
                Ok(vec![Event::Withdrawn { account, amount, day }])
            });
            dispatcher
                .dispatch_context(&h, command, &h.query(), &stream(account)?)
                .await
        }
        Command::Transfer { from, to, amount, day } => {
            let transfer_facts = facts(facts_of::opened(from, source)?)
                .with(facts_of::balance(from, source)?)
                .with(facts_of::spent_on(from, day, dialect, source)?)
                .with(facts_of::opened(to, target)?);
            let h = handler(
                Accounts::default(),
                transfer_facts,
                move |_: &Command, ctx: &Accounts| {
                    positive(amount)?;
                    if from == to {
                        return Err(Refused::SameAccount);
                    }
                    existing(&ctx.source, from)?;
                    existing(&ctx.target, to)?;
                    may_debit(&ctx.source, amount)?;
                    Ok(vec![Event::Transferred { from, to, amount, day }])
                },
            );
            dispatcher
                .dispatch_context(&h, command, &h.query(), &stream(from)?)
                .await
        }
    };
    let outcome = outcome.split_rejection().context("dispatch failed")?;
    Ok(outcome.map(|committed| committed.into_iter().map(|r| r.event).collect()))
}

fn stream(account: u32) -> anyhow::Result<StreamId> {
    Ok(StreamId::new(format!("account-{account}"))?)
}

/// Balances of every account, folded from the whole log: the read side.
fn balances() -> impl View<State = BTreeMap<u32, i64>, Event = Event> {
    view(BTreeMap::new(), |mut balances: BTreeMap<u32, i64>, event: &Event| {
        for account in touched(event) {
            *balances.entry(account).or_default() += event.balance_change(account);
        }
        balances
    })
}

/// Every bank event.
fn bank_query() -> Query {
    let types = ["AccountOpened", "Deposited", "Withdrawn", "Transferred"]
        .map(|t| factos::EventType::new(t).unwrap_or_else(|e| panic!("a constant event type: {e}")));
    Query::from(QueryItem::types(types))
}

/// The accounts an event changes.
fn touched(event: &Event) -> Vec<u32> {
    match *event {
        Event::AccountOpened { account, .. } | Event::Deposited { account, .. } | Event::Withdrawn { account, .. } => {
            vec![account]
        }
        Event::Transferred { from, to, .. } => vec![from, to],
    }
}

async fn balances_from_log<S: EventStore>(store: &S) -> anyhow::Result<BTreeMap<u32, i64>> {
    let stored = store.read(&bank_query(), ReadOptions::forwards()).await?;
    let codec = JsonCodec::<Event>::new();
    let events = stored
        .iter()
        .map(|e| factos::Codec::decode(&codec, e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(project(&balances(), &events))
}

#[derive(Debug, Parser)]
#[command(about = "Bank transfers with a daily limit, decided on contexts composed of facts.")]
struct Args {
    #[command(flatten)]
    store: support::StoreArgs,
}

#[path = "../logging.rs"]
mod logging;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    logging::init_tracing();
    let args = Args::parse();
    let opened = args.store.open("bank").await?;
    let mut sent = std::collections::BTreeSet::new();
    match &opened {
        support::Store::Sqlite(store, _scratch) => {
            demo(store, Dialect::Sqlite).await?;
            notices_once(store, &mut sent).await?;
        }
        #[cfg(feature = "postgres")]
        support::Store::Postgres(store) => {
            demo(store, Dialect::Postgres).await?;
            notices_once(store, &mut sent).await?;
        }
    }
    let projected = read_model::catch_up(&opened, Balances, JsonCodec::new()).await?;
    println!("balances, durable projection: {projected:?}");
    let from_log = match &opened {
        support::Store::Sqlite(store, _) => balances_from_log(store).await?,
        #[cfg(feature = "postgres")]
        support::Store::Postgres(store) => balances_from_log(store).await?,
    };
    let from_log: BTreeMap<i64, i64> = from_log.into_iter().map(|(a, b)| (i64::from(a), b)).collect();
    anyhow::ensure!(projected == from_log, "the projection must agree with the log");
    Ok(())
}

/// Sends the large-transfer notices, then runs the runner again to show
/// that nothing is sent twice.
async fn notices_once<S>(store: &S, sent: &mut std::collections::BTreeSet<factos::EffectKey>) -> anyhow::Result<()>
where
    S: factos::Follow + factos::Checkpoints + Sync,
{
    let first = send_notices(store, sent).await?;
    let again = send_notices(store, sent).await?;
    println!("large-transfer notices: {first} sent, {again} on a second run");
    anyhow::ensure!(again == 0, "a second run must send nothing");
    Ok(())
}

async fn demo<S: EventStore + Sync>(store: &S, dialect: Dialect) -> anyhow::Result<()> {
    let today = 20_415;
    let script = [
        Command::Open {
            account: 1,
            balance: 500,
            daily_limit: 300,
        },
        Command::Open {
            account: 2,
            balance: 0,
            daily_limit: 100,
        },
        Command::Deposit { account: 2, amount: 50 },
        Command::Withdraw {
            account: 1,
            amount: 120,
            day: today,
        },
        Command::Transfer {
            from: 1,
            to: 2,
            amount: 150,
            day: today,
        },
        Command::Transfer {
            from: 1,
            to: 2,
            amount: 50,
            day: today,
        },
        Command::Transfer {
            from: 1,
            to: 2,
            amount: 50,
            day: today + 1,
        },
        Command::Withdraw {
            account: 2,
            amount: 500,
            day: today,
        },
        Command::Transfer {
            from: 2,
            to: 3,
            amount: 10,
            day: today,
        },
        Command::Open {
            account: 1,
            balance: 0,
            daily_limit: 0,
        },
    ];
    for command in &script {
        match handle(store, dialect, command).await? {
            Ok(events) => println!("{command:?} -> {events:?}"),
            Err(refused) => println!("{command:?} -> refused: {refused}"),
        }
    }
    println!("balances from the log: {:?}", balances_from_log(store).await?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use factos::RetryPolicy;

    const DAY: i64 = 20_415;

    async fn sqlite(dir: &tempfile::TempDir) -> anyhow::Result<factos_sqlite::SqliteStore> {
        let store = factos_sqlite::SqliteStore::open(dir.path().join("bank.db"))?;
        store.migrate().await?;
        Ok(store)
    }

    #[cfg(feature = "postgres")]
    async fn postgres() -> anyhow::Result<factos_postgres::PgStore> {
        let (config, _) = factos_test_postgres::Cluster::shared()?.fresh_schema().await?;
        let store = factos_postgres::PgStore::connect_with(config, factos_postgres::PoolOptions::new(40))?;
        store.migrate().await?;
        Ok(store)
    }

    async fn ok<S: EventStore>(store: &S, dialect: Dialect, command: Command) -> anyhow::Result<()> {
        handle(store, dialect, &command)
            .await?
            .map(drop)
            .map_err(anyhow::Error::from)
    }

    #[tokio::test]
    async fn every_rule_rejects_with_its_domain_error() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = sqlite(&dir).await?;
        let d = Dialect::Sqlite;
        let refused = |command: Command| {
            let store = &store;
            async move {
                handle(store, d, &command)
                    .await?
                    .err()
                    .context("the command was accepted")
            }
        };
        ok(
            &store,
            d,
            Command::Open {
                account: 1,
                balance: 100,
                daily_limit: 80,
            },
        )
        .await?;
        ok(
            &store,
            d,
            Command::Open {
                account: 2,
                balance: 0,
                daily_limit: 10,
            },
        )
        .await?;
        assert_eq!(
            refused(Command::Open {
                account: 1,
                balance: 0,
                daily_limit: 0
            })
            .await?,
            Refused::AlreadyOpen(1)
        );
        assert_eq!(
            refused(Command::Deposit { account: 9, amount: 5 }).await?,
            Refused::UnknownAccount(9)
        );
        assert_eq!(
            refused(Command::Deposit { account: 1, amount: 0 }).await?,
            Refused::NonPositiveAmount
        );
        assert_eq!(
            refused(Command::Withdraw {
                account: 1,
                amount: -3,
                day: DAY
            })
            .await?,
            Refused::NonPositiveAmount
        );
        assert_eq!(
            refused(Command::Transfer {
                from: 1,
                to: 9,
                amount: 5,
                day: DAY
            })
            .await?,
            Refused::UnknownAccount(9)
        );
        assert_eq!(
            refused(Command::Transfer {
                from: 1,
                to: 1,
                amount: 5,
                day: DAY
            })
            .await?,
            Refused::SameAccount
        );
        assert_eq!(
            refused(Command::Withdraw {
                account: 2,
                amount: 5,
                day: DAY
            })
            .await?,
            Refused::InsufficientFunds {
                available: 0,
                requested: 5
            }
        );
        ok(
            &store,
            d,
            Command::Withdraw {
                account: 1,
                amount: 50,
                day: DAY,
            },
        )
        .await?;
        ok(
            &store,
            d,
            Command::Transfer {
                from: 1,
                to: 2,
                amount: 30,
                day: DAY,
            },
        )
        .await?;
        assert_eq!(
            refused(Command::Transfer {
                from: 1,
                to: 2,
                amount: 1,
                day: DAY
            })
            .await?,
            Refused::DailyLimitExceeded {
                limit: 80,
                spent: 80,
                requested: 1
            }
        );
        // Another day has its own limit; incoming transfers do not count.
        ok(
            &store,
            d,
            Command::Withdraw {
                account: 1,
                amount: 10,
                day: DAY + 1,
            },
        )
        .await?;
        ok(
            &store,
            d,
            Command::Withdraw {
                account: 2,
                amount: 10,
                day: DAY,
            },
        )
        .await?;
        assert_eq!(balances_from_log(&store).await?, BTreeMap::from([(1, 10), (2, 20)]));
        Ok(())
    }

    /// 32 tasks withdraw from and transfer out of one account at once; the
    /// account never goes negative and never exceeds its daily limit.
    async fn racing_debits_keep_the_rules<S: factos::SharedStore>(store: S, dialect: Dialect) -> anyhow::Result<()> {
        ok(
            &store,
            dialect,
            Command::Open {
                account: 1,
                balance: 1_000,
                daily_limit: 400,
            },
        )
        .await?;
        ok(
            &store,
            dialect,
            Command::Open {
                account: 2,
                balance: 0,
                daily_limit: 0,
            },
        )
        .await?;
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let command = if i % 2 == 0 {
                        Command::Withdraw {
                            account: 1,
                            amount: 30,
                            day: DAY,
                        }
                    } else {
                        Command::Transfer {
                            from: 1,
                            to: 2,
                            amount: 30,
                            day: DAY,
                        }
                    };
                    (i % 2 == 1, handle(&store, dialect, &command).await)
                })
            })
            .collect();
        let (mut accepted, mut transferred) = (0, 0);
        for task in tasks {
            let (transfer, outcome) = task.await?;
            match outcome? {
                Ok(_) => {
                    accepted += 1;
                    transferred += i64::from(transfer);
                }
                Err(Refused::DailyLimitExceeded { .. }) => {}
                Err(other) => anyhow::bail!("unexpected refusal {other}"),
            }
        }
        assert_eq!(accepted, 400 / 30, "exactly as many debits as the daily limit allows");
        let balances = balances_from_log(&store).await?;
        assert_eq!(balances[&1], 1_000 - 30 * accepted);
        assert!(balances[&1] >= 0);
        // The facts agree with the view.
        let dispatcher = Dispatcher::new(&store, JsonCodec::<Event>::new());
        let context_facts = facts(facts_of::balance(1, source)?).with(facts_of::spent_on(1, DAY, dialect, source)?);
        let read = handler(Accounts::default(), context_facts, |_: &(), _: &Accounts| {
            Ok::<_, Refused>(Vec::new())
        });
        let context = dispatcher.read_context(&read, &read.query()).await?;
        assert_eq!(context.state.source.balance, balances[&1]);
        assert_eq!(context.state.source.spent_today, 30 * accepted);
        assert_eq!(
            balances[&2],
            30 * transferred,
            "the target received exactly the accepted transfers"
        );
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_debits_keep_the_rules_on_sqlite() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        racing_debits_keep_the_rules(sqlite(&dir).await?, Dialect::Sqlite).await
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_debits_keep_the_rules_on_postgres() -> anyhow::Result<()> {
        racing_debits_keep_the_rules(postgres().await?, Dialect::Postgres).await
    }

    /// Transfers between unrelated pairs of accounts share no fact and never
    /// conflict: each succeeds on its first attempt.
    async fn unrelated_transfers_never_conflict<S: factos::SharedStore>(
        store: S,
        dialect: Dialect,
    ) -> anyhow::Result<()> {
        for account in 0..32 {
            ok(
                &store,
                dialect,
                Command::Open {
                    account,
                    balance: 100,
                    daily_limit: 100,
                },
            )
            .await?;
        }
        let tasks: Vec<_> = (0..16)
            .map(|pair| {
                let store = store.clone();
                tokio::spawn(async move {
                    let transfer = Command::Transfer {
                        from: 2 * pair,
                        to: 2 * pair + 1,
                        amount: 40,
                        day: DAY,
                    };
                    let (facts_from, facts_to) = (2 * pair, 2 * pair + 1);
                    let h = handler(
                        Accounts::default(),
                        facts(facts_of::opened(facts_from, source)?)
                            .with(facts_of::balance(facts_from, source)?)
                            .with(facts_of::spent_on(facts_from, DAY, dialect, source)?)
                            .with(facts_of::opened(facts_to, target)?),
                        move |_: &Command, ctx: &Accounts| -> Result<Vec<Event>, Refused> {
                            may_debit(&ctx.source, 40)?;
                            existing(&ctx.target, facts_to)?;
                            Ok(vec![Event::Transferred {
                                from: facts_from,
                                to: facts_to,
                                amount: 40,
                                day: DAY,
                            }])
                        },
                    );
                    Dispatcher::new(&store, JsonCodec::new())
                        .with_retry(RetryPolicy::none())
                        .dispatch_context(&h, &transfer, &h.query(), &stream(facts_from)?)
                        .await
                        .context("an unrelated transfer failed on its first attempt")
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await??.len(), 1);
        }
        let balances = balances_from_log(&store).await?;
        assert!((0..16).all(|p| balances[&(2 * p)] == 60 && balances[&(2 * p + 1)] == 140));
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unrelated_transfers_never_conflict_on_sqlite() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        unrelated_transfers_never_conflict(sqlite(&dir).await?, Dialect::Sqlite).await
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unrelated_transfers_never_conflict_on_postgres() -> anyhow::Result<()> {
        unrelated_transfers_never_conflict(postgres().await?, Dialect::Postgres).await
    }
}
