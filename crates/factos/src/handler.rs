//! What the dispatch flows run: a fold of recorded events into a state and a
//! decision on it.

use crate::decider::Decider;
use crate::recorded::Recorded;

/// A fold of recorded events into a state plus a decision on that state:
/// what [`crate::Dispatcher`] runs.
///
/// Every [`Decider`] is one (folding the events themselves), and so is a
/// handler composed of facts ([`crate::handler`]), which routes each event
/// by its type and tags.
///
/// Its methods are named apart from [`Decider`]'s (`initial` and `handle`
/// rather than `initial_state` and `decide`), so both traits can be in
/// scope and a decider's methods still need no qualification.
///
/// ```
/// use factos::{CommandHandler, Decider, decider};
/// let counter = decider(0u32, |_: &(), n: &u32| Ok::<_, ()>(vec![*n + 1]), |n, e: &u32| n.max(*e));
/// assert_eq!(counter.initial_state(), 0);
/// assert_eq!(counter.decide(&(), &41), Ok(vec![42]));
/// assert_eq!(counter.handle(&(), &counter.initial()), Ok(vec![1]));
/// ```
pub trait CommandHandler {
    /// The command being decided.
    type Command;
    /// The state folded from the context.
    type State;
    /// The events read and produced.
    type Event;
    /// Why a command is rejected.
    type Error;

    /// The state before any event.
    fn initial(&self) -> Self::State;

    /// Folds one recorded event into the state.
    fn apply(&self, state: Self::State, event: &Recorded<Self::Event>) -> Self::State;

    /// Rejects `command` or returns the events it produces, given `state`.
    ///
    /// # Errors
    ///
    /// The domain error that rejects the command.
    fn handle(&self, command: &Self::Command, state: &Self::State) -> Result<Vec<Self::Event>, Self::Error>;
}

impl<D: Decider> CommandHandler for D {
    type Command = D::Command;
    type State = D::State;
    type Event = D::Event;
    type Error = D::Error;

    fn initial(&self) -> Self::State {
        self.initial_state()
    }
    fn apply(&self, state: Self::State, event: &Recorded<Self::Event>) -> Self::State {
        self.evolve(state, &event.event)
    }
    fn handle(&self, command: &Self::Command, state: &Self::State) -> Result<Vec<Self::Event>, Self::Error> {
        self.decide(command, state)
    }
}
