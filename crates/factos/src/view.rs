//! Views: read-side folds of events into a state.

use std::fmt;
use std::marker::PhantomData;

/// A fold of events into a state, for read models and projections.
pub trait View {
    /// The folded state.
    type State;
    /// The events the view reads.
    type Event;

    /// The state before any event.
    fn initial_state(&self) -> Self::State;

    /// Folds one event into the state.
    fn evolve(&self, state: Self::State, event: &Self::Event) -> Self::State;
}

impl<V: View + ?Sized> View for &V {
    type State = V::State;
    type Event = V::Event;
    fn initial_state(&self) -> Self::State {
        (**self).initial_state()
    }
    fn evolve(&self, state: Self::State, event: &Self::Event) -> Self::State {
        (**self).evolve(state, event)
    }
}

/// A [`View`] built from an initial state and an `evolve` closure; see
/// [`view`].
pub struct FnView<S, E, Evo> {
    initial: S,
    evolve: Evo,
    _event: PhantomData<fn(&E)>,
}

impl<S: fmt::Debug, E, Evo> fmt::Debug for FnView<S, E, Evo> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnView")
            .field("initial", &self.initial)
            .finish_non_exhaustive()
    }
}

/// Builds a [`View`] from an initial state and an `evolve` closure.
pub fn view<S, E, Evo>(initial: S, evolve: Evo) -> FnView<S, E, Evo>
where
    S: Clone,
    Evo: Fn(S, &E) -> S,
{
    FnView {
        initial,
        evolve,
        _event: PhantomData,
    }
}

impl<S: Clone, E, Evo: Fn(S, &E) -> S> View for FnView<S, E, Evo> {
    type State = S;
    type Event = E;
    fn initial_state(&self) -> S {
        self.initial.clone()
    }
    fn evolve(&self, state: S, event: &E) -> S {
        (self.evolve)(state, event)
    }
}

/// Folds `events` into `view`'s state from its initial state.
///
/// ```
/// use factos::{merge_views, project, view};
///
/// let count = view(0usize, |n: usize, _: &i64| n + 1);
/// let sum = view(0i64, |s: i64, e: &i64| s + e);
/// assert_eq!(project(&merge_views(count, sum), &[3, 4]), (2, 7));
/// ```
pub fn project<'a, V: View>(view: &V, events: impl IntoIterator<Item = &'a V::Event>) -> V::State
where
    V::Event: 'a,
{
    events
        .into_iter()
        .fold(view.initial_state(), |state, event| view.evolve(state, event))
}

/// Two views over the same event type run as one; see [`merge_views`].
#[derive(Debug, Clone)]
pub struct MergedViews<A, B> {
    first: A,
    second: B,
}

/// Combines two views over the same event type into one view whose state is
/// the pair of their states. Each event is folded into both.
pub fn merge_views<A, B>(first: A, second: B) -> MergedViews<A, B>
where
    A: View,
    B: View<Event = A::Event>,
{
    MergedViews { first, second }
}

impl<A, B> View for MergedViews<A, B>
where
    A: View,
    B: View<Event = A::Event>,
{
    type State = (A::State, B::State);
    type Event = A::Event;

    fn initial_state(&self) -> Self::State {
        (self.first.initial_state(), self.second.initial_state())
    }
    fn evolve(&self, (a, b): Self::State, event: &Self::Event) -> Self::State {
        (self.first.evolve(a, event), self.second.evolve(b, event))
    }
}
