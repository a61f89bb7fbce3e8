//! [`EffectRunner`]: follow, react, hand over, checkpoint.

use std::convert::Infallible;
use std::fmt::Display;
use std::time::Duration;

use factos::{
    Checkpoints, Codec, Cursor, DecodeError, Delivered, EffectKey, Follow, ParkedEffect, Position, Query, Reactor,
    StoreError, Subscription, decode, decode_delivered,
};
use thiserror::Error;

/// What stops an [`EffectRunner`]. Its checkpoint stays before the batch
/// it was working on, so a restart hands that batch's effects again.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EffectError {
    /// The store failed (reading the log, saving the checkpoint, parking).
    #[error("effect runner {runner}: the store failed")]
    Store {
        /// The runner's name.
        runner: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// An event could not be decoded: the runner cannot know its effects.
    #[error("effect runner {runner}: an event cannot be decoded")]
    Decode {
        /// The runner's name.
        runner: String,
        /// The decode error.
        #[source]
        source: DecodeError,
    },
}

/// How a failing effect is retried before it is parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retry {
    /// How many times the handler is called for one effect in all.
    pub attempts: u32,
    /// The longest pause before the second call; later pauses may double.
    pub first_pause: Duration,
    /// The longest pause between two calls.
    pub max_pause: Duration,
}

impl Default for Retry {
    /// 5 calls, pauses of up to 100 ms doubling to at most 10 s, jittered.
    fn default() -> Self {
        Self {
            attempts: 5,
            first_pause: Duration::from_millis(100),
            max_pause: Duration::from_secs(10),
        }
    }
}

impl Retry {
    /// `attempts` calls (at least one), the default pauses.
    pub fn attempts(attempts: u32) -> Self {
        Self {
            attempts: attempts.max(1),
            ..Self::default()
        }
    }

    /// Sets the pauses.
    pub fn pauses(mut self, first: Duration, max: Duration) -> Self {
        self.first_pause = first;
        self.max_pause = max;
        self
    }

    /// A random pause before call `attempt + 1` (full jitter).
    fn pause(&self, attempt: u32) -> Duration {
        let ceiling = self
            .first_pause
            .saturating_mul(1 << attempt.saturating_sub(1).min(20))
            .min(self.max_pause);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Events examined (those the reactor saw).
    pub events: usize,
    /// Effects the handler accepted.
    pub delivered: usize,
    /// Effects parked after their last failed attempt (again, for a
    /// retried one that failed once more).
    pub parked: usize,
    /// Parked effects handed over again on an operator's request and
    /// accepted (counted in `delivered` too).
    pub retried: usize,
}

/// Follows `query` with the durable checkpoint `name`, turns each event into
/// effects with a [`Reactor`], and hands them to a handler; see the crate
/// docs for the guarantees.
#[derive(Debug)]
pub struct EffectRunner<'s, S, R, C> {
    store: &'s S,
    name: String,
    query: Query,
    reactor: R,
    codec: C,
    retry: Retry,
    batch_size: usize,
    retry_poll: Duration,
}

impl<'s, S, R, C> EffectRunner<'s, S, R, C>
where
    S: Follow + Checkpoints + Sync,
    R: Reactor,
    R::Effect: Clone,
    C: Codec<R::Event>,
{
    /// A runner named `name` (its checkpoint's name) for the events of
    /// `query`.
    pub fn new(store: &'s S, name: impl Into<String>, query: Query, reactor: R, codec: C) -> Self {
        Self {
            store,
            name: name.into(),
            query,
            reactor,
            codec,
            retry: Retry::default(),
            batch_size: 64,
            retry_poll: Duration::from_secs(1),
        }
    }

    /// Retries failing effects as `retry` says.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Checkpoints at least every `size` events (at least 1): a crash hands
    /// at most that many events' effects again.
    pub fn with_batch_size(mut self, size: usize) -> Self {
        self.batch_size = size.max(1);
        self
    }

    /// Looks for parked effects an operator asked to retry at least every
    /// `every` while [`run`](Self::run) waits for events (default 1 s: one
    /// read of the runner's parked effects per second).
    pub fn with_retry_poll(mut self, every: Duration) -> Self {
        self.retry_poll = every;
        self
    }

    /// The effects this runner parked.
    ///
    /// # Errors
    ///
    /// [`EffectError::Store`] when they cannot be read.
    pub async fn parked(&self) -> Result<Vec<ParkedEffect>, EffectError> {
        self.store
            .parked_effects(&self.name)
            .await
            .map_err(|e| self.store_error(e))
    }

    /// Hands over the parked effects an operator asked to retry, then the
    /// effects of every event committed before this call (waiting, where
    /// the store holds events back, for the transactions that were running
    /// at the call), then returns.
    ///
    /// # Errors
    ///
    /// [`EffectError`]; the checkpoint stays before the unfinished batch.
    pub async fn run_available<H, F, E>(&self, mut handler: H) -> Result<Report, EffectError>
    where
        H: FnMut(EffectKey, R::Effect) -> F,
        F: Future<Output = Result<(), E>>,
        E: Display,
    {
        let mut subscription = self.subscription().await?;
        let mut report = Report::default();
        self.retry_requested(&mut handler, &mut report).await?;
        let mark = self.store.commit_mark().await.map_err(|e| self.store_error(e))?;
        let mut settled = false;
        loop {
            let seen = self.store.commit_count();
            let batch = subscription.try_next().await.map_err(|e| self.store_error(e))?;
            match batch {
                Some((events, end)) => self.hand_over(events, end, &mut handler, &mut report).await?,
                None if settled => return Ok(report),
                None => {
                    settled = self.store.settled(mark).await.map_err(|e| self.store_error(e))?;
                    if !settled {
                        self.store.wait_for_commit(seen).await;
                    }
                }
            }
        }
    }

    /// Hands over effects as events commit, forever, and the parked
    /// effects an operator asks to retry (looked for every
    /// [`with_retry_poll`](Self::with_retry_poll)).
    ///
    /// # Errors
    ///
    /// [`EffectError`]; the checkpoint stays before the unfinished batch.
    pub async fn run<H, F, E>(&self, mut handler: H) -> Result<Infallible, EffectError>
    where
        H: FnMut(EffectKey, R::Effect) -> F,
        F: Future<Output = Result<(), E>>,
        E: Display,
    {
        let mut subscription = self.subscription().await?;
        let mut report = Report::default();
        let mut retries = tokio::time::interval(self.retry_poll);
        retries.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // `next_batch` moves the subscription's cursor only when it
            // returns events, so dropping it for a tick loses nothing.
            tokio::select! {
                biased;
                _ = retries.tick() => self.retry_requested(&mut handler, &mut report).await?,
                events = subscription.next_batch() => {
                    let events = events.map_err(|e| self.store_error(e))?;
                    if let Some(end) = subscription.cursor() {
                        self.hand_over(events, end, &mut handler, &mut report).await?;
                    }
                }
            }
        }
    }

    /// Hands over again every parked effect an operator asked to retry:
    /// re-created from its event, retried as [`Retry`] says, then removed
    /// when accepted or parked again with the new error. An effect that
    /// cannot be re-created (its event is gone or no longer decodes, or the
    /// reactor no longer calls for it) is parked again with the reason.
    async fn retry_requested<H, F, E>(&self, handler: &mut H, report: &mut Report) -> Result<(), EffectError>
    where
        H: FnMut(EffectKey, R::Effect) -> F,
        F: Future<Output = Result<(), E>>,
        E: Display,
    {
        let parked = self.parked().await?;
        for effect in parked.into_iter().filter(|p| p.retry_requested) {
            let (attempts, error) = match self.recreate(&effect).await? {
                Ok(value) => match self.deliver(effect.key, value, handler).await {
                    Ok(()) => {
                        tracing::info!(runner = %self.name, key = %effect.key, "a retried parked effect was accepted");
                        self.store
                            .discard_parked(&self.name, effect.key)
                            .await
                            .map_err(|e| self.store_error(e))?;
                        report.delivered += 1;
                        report.retried += 1;
                        continue;
                    }
                    Err((attempts, error)) => (effect.attempts.saturating_add(attempts), error),
                },
                Err(reason) => (effect.attempts, reason),
            };
            tracing::warn!(runner = %self.name, key = %effect.key, attempts, %error, "parking a retried effect again");
            let again = ParkedEffect {
                attempts,
                error,
                ..effect
            };
            self.store.park_effect(again).await.map_err(|e| self.store_error(e))?;
            report.parked += 1;
        }
        Ok(())
    }

    /// The parked effect's value, made again from its event: `Err` with the
    /// reason when that cannot be done.
    async fn recreate(&self, parked: &ParkedEffect) -> Result<Result<R::Effect, String>, EffectError> {
        let at = parked.cursor;
        // Nothing stands between this cursor and the event's own in any
        // delivery order: cursors order by (commit, position).
        let before = at
            .position()
            .value()
            .checked_sub(1)
            .map(|previous| Cursor::new(at.commit(), Position::new(previous)));
        let batch = self
            .store
            .read_after(&Query::all(), before, 1)
            .await
            .map_err(|e| self.store_error(e))?;
        let Some(found) = batch.events.into_iter().find(|d| d.record.id == parked.key.event) else {
            return Ok(Err(format!(
                "retry: event {} is no longer readable at {at}",
                parked.key.event
            )));
        };
        let event = match decode(&self.codec, found.record) {
            Ok(event) => event,
            Err(error) => return Ok(Err(format!("retry: {error}"))),
        };
        let effect = self.reactor.react(&event).into_iter().nth(parked.key.index as usize);
        Ok(effect.ok_or_else(|| format!("retry: the reactor no longer calls for effect {}", parked.key)))
    }

    async fn subscription(&self) -> Result<Subscription<'s, S>, EffectError> {
        let checkpoint = self
            .store
            .load_checkpoint(&self.name)
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(Subscription::new(self.store, self.query.clone(), checkpoint).batch_size(self.batch_size))
    }

    /// Hands over every effect of `events`, then moves the checkpoint to
    /// `end`.
    async fn hand_over<H, F, E>(
        &self,
        events: Vec<Delivered>,
        end: Cursor,
        handler: &mut H,
        report: &mut Report,
    ) -> Result<(), EffectError>
    where
        H: FnMut(EffectKey, R::Effect) -> F,
        F: Future<Output = Result<(), E>>,
        E: Display,
    {
        let events = decode_delivered(&self.codec, events).map_err(|source| EffectError::Decode {
            runner: self.name.clone(),
            source,
        })?;
        for delivered in &events {
            report.events += 1;
            let effects = self.reactor.react(&delivered.record);
            for (index, effect) in (0u32..).zip(effects) {
                let key = EffectKey {
                    event: delivered.record.id,
                    index,
                };
                match self.deliver(key, effect, handler).await {
                    Ok(()) => report.delivered += 1,
                    Err((attempts, error)) => {
                        tracing::warn!(runner = %self.name, %key, attempts, %error, "parking an effect that keeps failing");
                        let parked = ParkedEffect {
                            runner: self.name.clone(),
                            key,
                            cursor: delivered.cursor,
                            attempts,
                            error,
                            retry_requested: false,
                        };
                        self.store.park_effect(parked).await.map_err(|e| self.store_error(e))?;
                        report.parked += 1;
                    }
                }
            }
        }
        self.store
            .save_checkpoint(&self.name, end)
            .await
            .map_err(|e| self.store_error(e))
    }

    /// Calls the handler until it accepts `effect` or the attempts are
    /// spent; then the attempts made and the last error.
    async fn deliver<H, F, E>(&self, key: EffectKey, effect: R::Effect, handler: &mut H) -> Result<(), (u32, String)>
    where
        H: FnMut(EffectKey, R::Effect) -> F,
        F: Future<Output = Result<(), E>>,
        E: Display,
    {
        let mut attempt = 1;
        loop {
            match handler(key, effect.clone()).await {
                Ok(()) => return Ok(()),
                Err(error) if attempt >= self.retry.attempts => return Err((attempt, error.to_string())),
                Err(error) => {
                    tracing::debug!(runner = %self.name, %key, attempt, %error, "effect failed; retrying");
                    tokio::time::sleep(self.retry.pause(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    fn store_error(&self, source: StoreError) -> EffectError {
        EffectError::Store {
            runner: self.name.clone(),
            source,
        }
    }
}
