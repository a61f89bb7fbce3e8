//! Deciders: the pure decision logic of a command.
//!
//! A decider turns a command and the state folded from past events into new
//! events or a domain error. It does no IO: the dispatch flows in
//! [`crate::dispatch`] read, fold, call it and append.

use std::fmt;
use std::marker::PhantomData;

/// Decision logic: initial state, `decide` and `evolve`.
///
/// Implement it on your own type, or build one from closures with
/// [`decider`].
pub trait Decider {
    /// The command being decided.
    type Command;
    /// The state folded from past events.
    type State;
    /// The events the decider reads and produces.
    type Event;
    /// Why a command is rejected.
    type Error;

    /// The state before any event.
    fn initial_state(&self) -> Self::State;

    /// Rejects `command` or returns the events it produces, given `state`.
    ///
    /// # Errors
    ///
    /// The domain error that rejects the command.
    fn decide(&self, command: &Self::Command, state: &Self::State) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state.
    fn evolve(&self, state: Self::State, event: &Self::Event) -> Self::State;

    /// Folds `events` into the state, starting from `state`.
    fn fold<'a>(&self, state: Self::State, events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(state, |state, event| self.evolve(state, event))
    }
}

impl<D: Decider + ?Sized> Decider for &D {
    type Command = D::Command;
    type State = D::State;
    type Event = D::Event;
    type Error = D::Error;

    fn initial_state(&self) -> Self::State {
        (**self).initial_state()
    }
    fn decide(&self, command: &Self::Command, state: &Self::State) -> Result<Vec<Self::Event>, Self::Error> {
        (**self).decide(command, state)
    }
    fn evolve(&self, state: Self::State, event: &Self::Event) -> Self::State {
        (**self).evolve(state, event)
    }
}

/// A [`Decider`] built from an initial state and two closures; see
/// [`decider`].
pub struct FnDecider<C, S, E, Err, Dec, Evo> {
    initial: S,
    decide: Dec,
    evolve: Evo,
    _types: PhantomData<fn(&C, &E) -> Err>,
}

impl<C, S: fmt::Debug, E, Err, Dec, Evo> fmt::Debug for FnDecider<C, S, E, Err, Dec, Evo> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnDecider")
            .field("initial", &self.initial)
            .finish_non_exhaustive()
    }
}

impl<C, S: Clone, E, Err, Dec: Clone, Evo: Clone> Clone for FnDecider<C, S, E, Err, Dec, Evo> {
    fn clone(&self) -> Self {
        Self {
            initial: self.initial.clone(),
            decide: self.decide.clone(),
            evolve: self.evolve.clone(),
            _types: PhantomData,
        }
    }
}

/// Builds a [`Decider`] from an initial state, a `decide` closure and an
/// `evolve` closure.
///
/// ```
/// use factos::{compute_events, decider};
///
/// enum Command { Buy }
/// #[derive(Debug, PartialEq)]
/// enum Event { Sold }
///
/// let capacity = 2;
/// let tickets = decider(
///     0u32,
///     move |_: &Command, sold: &u32| {
///         if *sold < capacity { Ok(vec![Event::Sold]) } else { Err("sold out") }
///     },
///     |sold: u32, _: &Event| sold + 1,
/// );
///
/// assert_eq!(compute_events(&tickets, &[Event::Sold], &Command::Buy), Ok(vec![Event::Sold]));
/// assert_eq!(compute_events(&tickets, &[Event::Sold, Event::Sold], &Command::Buy), Err("sold out"));
/// ```
pub fn decider<C, S, E, Err, Dec, Evo>(initial: S, decide: Dec, evolve: Evo) -> FnDecider<C, S, E, Err, Dec, Evo>
where
    S: Clone,
    Dec: Fn(&C, &S) -> Result<Vec<E>, Err>,
    Evo: Fn(S, &E) -> S,
{
    FnDecider {
        initial,
        decide,
        evolve,
        _types: PhantomData,
    }
}

impl<C, S, E, Err, Dec, Evo> Decider for FnDecider<C, S, E, Err, Dec, Evo>
where
    S: Clone,
    Dec: Fn(&C, &S) -> Result<Vec<E>, Err>,
    Evo: Fn(S, &E) -> S,
{
    type Command = C;
    type State = S;
    type Event = E;
    type Error = Err;

    fn initial_state(&self) -> S {
        self.initial.clone()
    }
    fn decide(&self, command: &C, state: &S) -> Result<Vec<E>, Err> {
        (self.decide)(command, state)
    }
    fn evolve(&self, state: S, event: &E) -> S {
        (self.evolve)(state, event)
    }
}

/// Event-sourced decision: folds `events` from the initial state and decides
/// `command` on the result.
///
/// # Errors
///
/// The decider's domain error.
pub fn compute_events<D: Decider>(
    decider: &D,
    events: &[D::Event],
    command: &D::Command,
) -> Result<Vec<D::Event>, D::Error> {
    let state = decider.fold(decider.initial_state(), events);
    decider.decide(command, &state)
}

/// The evolved state and the events that produced it.
type StateAndEvents<D> = (<D as Decider>::State, Vec<<D as Decider>::Event>);

/// State-stored decision: decides `command` on `state` (the initial state
/// when `None`) and returns the evolved state with the produced events.
///
/// # Errors
///
/// The decider's domain error.
pub fn compute_state<D: Decider>(
    decider: &D,
    state: Option<D::State>,
    command: &D::Command,
) -> Result<StateAndEvents<D>, D::Error> {
    let state = state.unwrap_or_else(|| decider.initial_state());
    let events = decider.decide(command, &state)?;
    let state = decider.fold(state, &events);
    Ok((state, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Counted {
        Added(u32),
    }

    fn counter() -> impl Decider<Command = u32, State = u32, Event = Counted, Error = &'static str> {
        decider(
            0u32,
            |add: &u32, total: &u32| {
                if total + add > 10 {
                    Err("over limit")
                } else {
                    Ok(vec![Counted::Added(*add)])
                }
            },
            |total: u32, Counted::Added(n): &Counted| total + n,
        )
    }

    #[test]
    fn compute_state_decides_then_evolves() {
        let d = counter();
        assert_eq!(compute_state(&d, None, &4), Ok((4, vec![Counted::Added(4)])));
        assert_eq!(compute_state(&d, Some(4), &5), Ok((9, vec![Counted::Added(5)])));
        assert_eq!(compute_state(&d, Some(9), &5), Err("over limit"));
    }

    #[test]
    fn compute_events_folds_history_first() {
        let d = counter();
        let history = [Counted::Added(6), Counted::Added(3)];
        assert_eq!(compute_events(&d, &history, &1), Ok(vec![Counted::Added(1)]));
        assert_eq!(compute_events(&d, &history, &2), Err("over limit"));
    }
}
