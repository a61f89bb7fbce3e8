//! Turns for decisions on a contended scope: one decision at a time per
//! scope in this process, waited for with a time limit.
//!
//! A scope whose optimistic decision lost a race is likely to lose again
//! while its racers keep deciding. Its next decisions take turns: each
//! holds the scope from its read to its append, so decisions on it in this
//! process cannot invalidate each other. Only decisions on the same scope
//! ever wait here; writes and other scopes' decisions never do.
//!
//! A lost race is marked by the writer before any append of its group is
//! answered, so the racer that won cannot start its next decision without
//! a turn before the loser has asked for one. The contention ends when a
//! decision that held the turn ends with nobody waiting for it: while one
//! waits, every new decision on the scope queues behind it.
//!
//! Turns are this process's. A racer in another process writing to the
//! same file takes none, and can keep a loser in step behind it: the loser
//! reads while the racer's append is in flight, and its append then fails
//! on it, while the racer reads during the loser's failed attempt, which
//! wrote nothing. So a decision on a scope whose decisions lost two races
//! in a row (turns make that rare within one process) first pauses for a
//! random time, up to 1 ms and doubling with each further loss to at most
//! [`MAX_PAUSE`], which puts it out of step (measured in
//! `tests/processes.rs`: two processes racing for 60 seats).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use factos::DecisionScope;

use crate::error::SqliteError;

/// At most this many scopes are remembered as contended; beyond it the
/// memory starts over (a forgotten scope costs one more lost race).
const MAX_CONTENDED: usize = 1_024;

/// The longest pause before a decision on a scope that keeps losing races.
pub(crate) const MAX_PAUSE: Duration = Duration::from_millis(32);

/// The contended scopes, and whose turn is taken or waited for.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Scopes whose last decision lost a race, with how many races their
    /// decisions lost in a row.
    contended: HashMap<DecisionScope, u32>,
    /// Scopes whose turn a decision holds.
    taken: HashSet<DecisionScope>,
    /// How many decisions wait for each scope's turn.
    waiting: HashMap<DecisionScope, usize>,
}

/// A decision's turn on its scope, given back when dropped.
#[derive(Debug)]
pub(crate) struct Turn {
    turns: Arc<Turns>,
    scope: DecisionScope,
}

impl Turns {
    /// Whether decisions on `scope` take turns.
    pub(crate) fn is_contended(&self, scope: &DecisionScope) -> bool {
        self.state().contended.contains_key(scope)
    }

    /// Marks `scope` contended: a decision on it lost a race.
    pub(crate) fn lost(&self, scope: &DecisionScope) {
        let mut state = self.state();
        if state.contended.len() >= MAX_CONTENDED {
            state.contended.clear();
        }
        *state.contended.entry(scope.clone()).or_default() += 1;
    }

    /// How long a decision on `scope` pauses before it reads: a random
    /// time up to 1 ms after two lost races in a row, doubling with each
    /// further one up to [`MAX_PAUSE`]; none before.
    pub(crate) fn pause(&self, scope: &DecisionScope) -> Duration {
        let losses = self.state().contended.get(scope).copied().unwrap_or(0);
        if losses < 2 {
            return Duration::ZERO;
        }
        let ceiling = Duration::from_millis(1)
            .saturating_mul(1 << (losses - 2).min(16))
            .min(MAX_PAUSE);
        ceiling.mul_f64(fastrand::f64())
    }

    /// Waits until no other decision holds `scope`, for at most `timeout`,
    /// then holds it. Blocks the calling thread.
    ///
    /// # Errors
    ///
    /// [`SqliteError::DecisionTimeout`] when the turn did not come in time.
    pub(crate) fn take(self: &Arc<Self>, scope: DecisionScope, timeout: Duration) -> Result<Turn, SqliteError> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state();
        *state.waiting.entry(scope.clone()).or_default() += 1;
        let mut timed_out = false;
        while state.taken.contains(&scope) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                timed_out = true;
                break;
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        if let Some(count) = state.waiting.get_mut(&scope) {
            *count -= 1;
            if *count == 0 {
                state.waiting.remove(&scope);
            }
        }
        if timed_out {
            return Err(SqliteError::DecisionTimeout { after: timeout });
        }
        state.taken.insert(scope.clone());
        Ok(Turn {
            turns: Arc::clone(self),
            scope,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is consistent after every operation on it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Turn {
    /// Gives the turn back after a decision that did not lose a race (it
    /// won, or wrote nothing): the contention ends unless another decision
    /// waits for the turn.
    pub(crate) fn settled(self) {
        let mut state = self.turns.state();
        if !state.waiting.contains_key(&self.scope) {
            state.contended.remove(&self.scope);
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.turns.state().taken.remove(&self.scope);
        self.turns.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use factos::StreamId;

    #[test]
    fn a_turn_is_waited_for_until_given_back_or_the_time_limit() -> Result<(), Box<dyn std::error::Error>> {
        let turns = Arc::new(Turns::default());
        let scope = DecisionScope::Stream(StreamId::new("s")?);
        let other = DecisionScope::Stream(StreamId::new("t")?);
        let first = turns.take(scope.clone(), Duration::from_secs(1))?;
        // Another scope never waits.
        drop(turns.take(other, Duration::ZERO)?);
        let refused = turns.take(scope.clone(), Duration::from_millis(20));
        assert!(matches!(refused, Err(SqliteError::DecisionTimeout { .. })));
        let waiter = {
            let turns = Arc::clone(&turns);
            let scope = scope.clone();
            std::thread::spawn(move || turns.take(scope, Duration::from_secs(5)).map(drop))
        };
        std::thread::sleep(Duration::from_millis(20));
        drop(first);
        waiter.join().map_err(|_| "the waiter panicked")??;
        Ok(())
    }

    #[test]
    fn contention_outlasts_a_turn_while_another_decision_waits_for_it() -> Result<(), Box<dyn std::error::Error>> {
        let turns = Arc::new(Turns::default());
        let scope = DecisionScope::Stream(StreamId::new("s")?);
        turns.lost(&scope);
        let first = turns.take(scope.clone(), Duration::from_secs(1))?;
        let (done, finish) = std::sync::mpsc::channel::<()>();
        let waiter = {
            let turns = Arc::clone(&turns);
            let scope = scope.clone();
            // It keeps its turn until told to end its decision.
            std::thread::spawn(move || {
                let turn = turns.take(scope, Duration::from_secs(5))?;
                let _ = finish.recv();
                turn.settled();
                Ok::<_, SqliteError>(())
            })
        };
        while !turns.state().waiting.contains_key(&scope) {
            std::thread::yield_now();
        }
        first.settled();
        assert!(
            turns.is_contended(&scope),
            "a waiting decision must keep the scope's turns"
        );
        done.send(()).map_err(|_| "the waiter is gone")?;
        waiter.join().map_err(|_| "the waiter panicked")??;
        assert!(!turns.is_contended(&scope), "the last turn ends the contention");
        Ok(())
    }

    #[test]
    fn a_scope_that_keeps_losing_pauses_longer_up_to_the_limit() -> Result<(), Box<dyn std::error::Error>> {
        let turns = Arc::new(Turns::default());
        let scope = DecisionScope::Stream(StreamId::new("s")?);
        assert_eq!(turns.pause(&scope), Duration::ZERO, "an uncontended scope never pauses");
        turns.lost(&scope);
        assert_eq!(turns.pause(&scope), Duration::ZERO, "nor one that lost one race");
        turns.lost(&scope);
        assert!((0..100).all(|_| turns.pause(&scope) <= Duration::from_millis(1)));
        for _ in 0..3 {
            turns.lost(&scope);
        }
        let pauses: Vec<Duration> = (0..200).map(|_| turns.pause(&scope)).collect();
        assert!(pauses.iter().all(|p| *p <= Duration::from_millis(8)));
        assert!(
            pauses.iter().any(|p| *p > Duration::from_millis(1)),
            "five losses in a row pause up to 8 ms"
        );
        for _ in 0..20 {
            turns.lost(&scope);
        }
        assert!((0..100).all(|_| turns.pause(&scope) <= MAX_PAUSE));
        turns.take(scope.clone(), Duration::from_secs(1))?.settled();
        assert_eq!(turns.pause(&scope), Duration::ZERO, "a won decision ends the pauses");
        Ok(())
    }
}
