//! Composable facts: one decision context built from small reusable pieces.
//!
//! A [`Fact`] is a query plus a fold that updates one part of a shared
//! context value from each matching event: "account X exists", "the balance
//! of account X", "what account X spent today". A command handler combines
//! several facts over one context type with a pure `decide` function; the
//! same fact is reused by many handlers, and the same fact constructor can
//! appear twice with different parameters (the balance of the source and of
//! the destination account).
//!
//! Reading a composed context is one read of the union of the facts'
//! queries. Each event goes, in position order, to the facts whose query
//! matches its type and tags, and the decision's append condition covers
//! the union.
//!
//! ```
//! use factos::{fact, facts, handler, Dispatcher, JsonCodec, JsonEvent, MemoryStore, Query, QueryItem, StreamId, Tag};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! enum Event { Deposited { account: u32, amount: i64 } }
//! impl JsonEvent for Event {
//!     fn event_type(&self) -> &'static str { "Deposited" }
//!     fn tags(&self) -> Vec<String> { let Event::Deposited { account, .. } = self; vec![format!("account:{account}")] }
//! }
//!
//! #[derive(Debug, Clone, Default)]
//! struct Balances { from: i64, to: i64 }
//!
//! /// The balance of `account`, written where `field` says: one fact, reused.
//! fn balance(account: u32, field: fn(&mut Balances) -> &mut i64)
//!     -> factos::Fact<impl Fn(&mut Balances, &factos::Recorded<Event>)>
//! {
//!     let query = Query::from(QueryItem::tags([Tag::new(format!("account:{account}")).expect("valid tag")]));
//!     fact(query, move |ctx: &mut Balances, e: &factos::Recorded<Event>| {
//!         let Event::Deposited { amount, .. } = e.event;
//!         *field(ctx) += amount;
//!     })
//! }
//!
//! let move_money = handler(
//!     Balances::default(),
//!     facts(balance(1, |c| &mut c.from)).with(balance(2, |c| &mut c.to)),
//!     |amount: &i64, ctx: &Balances| {
//!         if ctx.from < *amount { return Err("insufficient funds"); }
//!         Ok(vec![Event::Deposited { account: 2, amount: *amount }])
//!     },
//! );
//!
//! # futures::executor::block_on(async {
//! let store = MemoryStore::new();
//! let dispatcher = Dispatcher::new(&store, JsonCodec::new());
//! let stream = StreamId::new("bank")?;
//! let seed = handler(Balances::default(), facts(balance(1, |c| &mut c.from)), |_: &(), _: &Balances| {
//!     Ok::<_, &str>(vec![Event::Deposited { account: 1, amount: 50 }])
//! });
//! dispatcher.dispatch_context(&seed, &(), &seed.query(), &stream).await?;
//! let context = dispatcher.read_context(&move_money, &move_money.query()).await?;
//! assert_eq!((context.state.from, context.state.to), (50, 0));
//! assert!(dispatcher.dispatch_context(&move_money, &80, &move_money.query(), &stream).await.is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::marker::PhantomData;

use crate::handler::CommandHandler;
use crate::query::Query;
use crate::recorded::Recorded;

/// A query and a fold of the matching events into a shared context; see the
/// [module docs](self).
pub struct Fact<F> {
    query: Query,
    fold: F,
}

impl<F> fmt::Debug for Fact<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fact")
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

impl<F> Fact<F> {
    /// The events this fact folds.
    pub fn query(&self) -> &Query {
        &self.query
    }
}

/// A fact: the events matching `query` (by type and tags), folded into the
/// context by `fold`.
///
/// If `query` carries a SQL [`crate::Predicate`], the store reads only the
/// events it admits, but `fold` may still see other events of the same types
/// and tags that another fact of the handler brought in; a fold that depends
/// on the predicate checks it on the event itself.
pub fn fact<C, E, F>(query: impl Into<Query>, fold: F) -> Fact<F>
where
    F: Fn(&mut C, &Recorded<E>),
{
    Fact {
        query: query.into(),
        fold,
    }
}

/// One or more facts over the context type `C` and event type `E`.
pub trait Facts<C, E> {
    /// The union of the facts' queries.
    fn query(&self) -> Query;

    /// Feeds `event` to every fact whose query matches it.
    fn apply(&self, context: &mut C, event: &Recorded<E>);
}

impl<C, E, F: Fn(&mut C, &Recorded<E>)> Facts<C, E> for Fact<F> {
    fn query(&self) -> Query {
        self.query.clone()
    }
    fn apply(&self, context: &mut C, event: &Recorded<E>) {
        if event.matches(&self.query) {
            (self.fold)(context, event);
        }
    }
}

impl<C, E, A: Facts<C, E>, B: Facts<C, E>> Facts<C, E> for (A, B) {
    fn query(&self) -> Query {
        self.0.query().union(self.1.query())
    }
    fn apply(&self, context: &mut C, event: &Recorded<E>) {
        self.0.apply(context, event);
        self.1.apply(context, event);
    }
}

/// A non-empty list of facts under construction; see [`facts`].
#[derive(Debug)]
pub struct FactSet<L>(L);

/// Starts a list of facts with `first`; add more with [`FactSet::with`].
pub fn facts<F>(first: Fact<F>) -> FactSet<Fact<F>> {
    FactSet(first)
}

impl<L> FactSet<L> {
    /// Adds a fact.
    pub fn with<F>(self, fact: Fact<F>) -> FactSet<(L, Fact<F>)> {
        FactSet((self.0, fact))
    }
}

/// A command handler made of facts and a pure `decide`; see [`handler`].
pub struct FactHandler<C, Cmd, E, Err, L, D> {
    initial: C,
    facts: L,
    decide: D,
    _types: PhantomData<fn(&Cmd, &E) -> Err>,
}

impl<C: fmt::Debug, Cmd, E, Err, L, D> fmt::Debug for FactHandler<C, Cmd, E, Err, L, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FactHandler")
            .field("initial", &self.initial)
            .finish_non_exhaustive()
    }
}

/// A command handler: the context starts as `initial`, `facts` fold the
/// events of their queries into it, and `decide` rejects the command or
/// returns new events. It dispatches through the same flows as a
/// [`crate::Decider`]; pass [`FactHandler::query`] as the context query.
pub fn handler<C, Cmd, E, Err, L, D>(initial: C, facts: FactSet<L>, decide: D) -> FactHandler<C, Cmd, E, Err, L, D>
where
    C: Clone,
    L: Facts<C, E>,
    D: Fn(&Cmd, &C) -> Result<Vec<E>, Err>,
{
    FactHandler {
        initial,
        facts: facts.0,
        decide,
        _types: PhantomData,
    }
}

impl<C, Cmd, E, Err, L: Facts<C, E>, D> FactHandler<C, Cmd, E, Err, L, D> {
    /// The union of the facts' queries: the consistency boundary of the
    /// handler's decisions.
    pub fn query(&self) -> Query {
        self.facts.query()
    }
}

impl<C, Cmd, E, Err, L, D> CommandHandler for FactHandler<C, Cmd, E, Err, L, D>
where
    C: Clone,
    L: Facts<C, E>,
    D: Fn(&Cmd, &C) -> Result<Vec<E>, Err>,
{
    type Command = Cmd;
    type State = C;
    type Event = E;
    type Error = Err;

    fn initial(&self) -> C {
        self.initial.clone()
    }
    fn apply(&self, mut state: C, event: &Recorded<E>) -> C {
        self.facts.apply(&mut state, event);
        state
    }
    fn handle(&self, command: &Cmd, state: &C) -> Result<Vec<E>, Err> {
        (self.decide)(command, state)
    }
}
