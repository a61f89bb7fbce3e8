//! `factos tail`: follow new events as they commit, until Ctrl-C.
//!
//! Built on [`factos::Subscription`], which reads the log in the
//! backend's delivery order and never skips an event: on PostgreSQL an
//! event appears once every transaction that began before it ended (see
//! `factos_postgres::follow`). By default it starts at the end of what is
//! there (it walks to the end first without printing); `--from-start`
//! prints the matching history first, `--after CURSOR` resumes where a
//! previous `tail --json` stopped.

use clap::ArgMatches;
use factos::{Cursor, Subscription};

use crate::cli::TailArgs;
use crate::error::CliError;
use crate::follow::end_cursor;
use crate::output::Out;
use crate::query;
use crate::record::{RecordOut, format_time, preview};
use crate::store::CliStore;

pub async fn run<S: CliStore>(store: &S, args: &TailArgs, flags: &ArgMatches) -> Result<(), CliError> {
    let query = query::from_matches(flags)?;
    let mut after = match &args.after {
        Some(text) => Some(
            text.parse::<Cursor>()
                .map_err(|e| CliError::Invalid(format!("--after {text:?}: {e}")))?,
        ),
        None => None,
    };
    if !args.from_start && after.is_none() {
        after = end_cursor(store, &query).await?;
    }
    let mut subscription = Subscription::new(store, query, after);
    let mut out = Out::stdout();
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            batch = subscription.next_batch() => {
                let batch = batch.map_err(CliError::store("cannot follow the store"))?;
                for delivered in batch {
                    let event = &delivered.record;
                    match args.json {
                        true => out.line(RecordOut::new(event).with_cursor(delivered.cursor).line())?,
                        false => out.line(format!(
                            "{}  {}@{}  {}  [{}]  {}  {}",
                            event.position,
                            event.stream,
                            event.revision,
                            event.event_type,
                            event.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" "),
                            format_time(event.recorded_at),
                            preview(&event.event, 80),
                        ))?,
                    }
                }
                out.flush()?;
            }
        }
    }
    out.flush()
}
