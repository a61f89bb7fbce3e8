//! Reactors: committed events in, effect values out.
//!
//! The library never executes side effects. A reactor describes them as
//! values (send this email, call that webhook) and the application decides
//! how and when to run them, typically after a dispatch returned the
//! committed records.

use std::fmt;
use std::marker::PhantomData;

use crate::recorded::Recorded;

/// Turns a committed event into the effects it calls for.
pub trait Reactor {
    /// The events reacted to.
    type Event;
    /// The effect values produced.
    type Effect;

    /// The effects that `event` calls for; often none.
    fn react(&self, event: &Recorded<Self::Event>) -> Vec<Self::Effect>;
}

impl<R: Reactor + ?Sized> Reactor for &R {
    type Event = R::Event;
    type Effect = R::Effect;
    fn react(&self, event: &Recorded<Self::Event>) -> Vec<Self::Effect> {
        (**self).react(event)
    }
}

/// A [`Reactor`] built from a closure; see [`reactor`].
pub struct FnReactor<E, Fx, F> {
    react: F,
    _types: PhantomData<fn(&E) -> Fx>,
}

impl<E, Fx, F> fmt::Debug for FnReactor<E, Fx, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnReactor").finish_non_exhaustive()
    }
}

/// Builds a [`Reactor`] from a closure.
pub fn reactor<E, Fx, F>(react: F) -> FnReactor<E, Fx, F>
where
    F: Fn(&Recorded<E>) -> Vec<Fx>,
{
    FnReactor {
        react,
        _types: PhantomData,
    }
}

impl<E, Fx, F: Fn(&Recorded<E>) -> Vec<Fx>> Reactor for FnReactor<E, Fx, F> {
    type Event = E;
    type Effect = Fx;
    fn react(&self, event: &Recorded<E>) -> Vec<Fx> {
        (self.react)(event)
    }
}

/// The effects of all `events`, in event order.
pub fn react_all<'a, R: Reactor>(
    reactor: &R,
    events: impl IntoIterator<Item = &'a Recorded<R::Event>>,
) -> Vec<R::Effect>
where
    R::Event: 'a,
{
    events.into_iter().flat_map(|event| reactor.react(event)).collect()
}
