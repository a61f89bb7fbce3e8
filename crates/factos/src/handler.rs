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
    fn initial_state(&self) -> Self::State;

    /// Folds one recorded event into the state.
    fn apply(&self, state: Self::State, event: &Recorded<Self::Event>) -> Self::State;

    /// Rejects `command` or returns the events it produces, given `state`.
    ///
    /// # Errors
    ///
    /// The domain error that rejects the command.
    fn decide(&self, command: &Self::Command, state: &Self::State) -> Result<Vec<Self::Event>, Self::Error>;
}

impl<D: Decider> CommandHandler for D {
    type Command = D::Command;
    type State = D::State;
    type Event = D::Event;
    type Error = D::Error;

    fn initial_state(&self) -> Self::State {
        Decider::initial_state(self)
    }
    fn apply(&self, state: Self::State, event: &Recorded<Self::Event>) -> Self::State {
        self.evolve(state, &event.event)
    }
    fn decide(&self, command: &Self::Command, state: &Self::State) -> Result<Vec<Self::Event>, Self::Error> {
        Decider::decide(self, command, state)
    }
}
