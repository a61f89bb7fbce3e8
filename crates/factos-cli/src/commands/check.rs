//! `factos check`: verify a store's integrity with
//! [`factos::admin::IntegrityCheck`]: positions strictly increasing, stream
//! revisions consecutive from 0, unique ids, the tag index agreeing with
//! the events both ways. (The schema version was checked when the store
//! was opened.) Every problem is printed with its position; any problem
//! makes the command fail.

use std::collections::VecDeque;

use factos::Position;
use factos::admin::{IntegrityCheck, Problem, TagRow};
use serde_json::json;

use crate::error::CliError;
use crate::output::{Out, store_progress};
use crate::store::CliStore;
use crate::transfer::{Source, StoreSource};

/// Tag rows are fetched for this many positions at a time: the tag index
/// is keyed by tag, so each fetch scans it once.
const TAG_ROW_SPAN: u64 = 100_000;

pub async fn run<S: CliStore>(store: &S, json: bool) -> Result<(), CliError> {
    let bar = store_progress(store, "checking").await;
    let mut out = Out::stdout();
    let mut check = IntegrityCheck::new();
    let mut rows: VecDeque<TagRow> = VecDeque::new();
    let mut fetched_to = 0u64;
    let mut found = 0u64;
    let mut report = |problems: Vec<Problem>, out: &mut Out| -> Result<(), CliError> {
        for problem in problems {
            found += 1;
            bar.suspend(|| match json {
                true => out.line(json!({"position": problem.position().value(), "problem": problem.to_string()})),
                false => out.line(format!("position {}: {problem}", problem.position())),
            })?;
        }
        out.flush()
    };
    let mut events = StoreSource::new(store, None);
    loop {
        let page = events.next_batch().await?;
        let Some(page_last) = page.last().map(|e| e.position.value()) else {
            break;
        };
        while fetched_to < page_last {
            let up_to = fetched_to.saturating_add(TAG_ROW_SPAN);
            rows.extend(tag_rows(store, fetched_to, Some(up_to)).await?);
            fetched_to = up_to;
        }
        let mut of_page = Vec::new();
        while rows.front().is_some_and(|row| row.position.value() <= page_last) {
            of_page.extend(rows.pop_front());
        }
        report(check.page(&page, &of_page), &mut out)?;
        bar.inc(page.len() as u64);
    }
    let mut rest: Vec<TagRow> = rows.into();
    rest.extend(tag_rows(store, fetched_to, None).await?);
    report(check.page(&[], &rest), &mut out)?;
    bar.finish_and_clear();
    let examined = check.examined();
    if json {
        out.line(json!({"events": examined, "problems": found}))?;
        out.flush()?;
    }
    if found > 0 {
        return Err(CliError::Failed(format!(
            "found {} in {}",
            crate::output::count(found, "problem"),
            crate::output::count(examined, "event")
        )));
    }
    if !json {
        out.line(format!("checked {examined} events: no problems found"))?;
        out.flush()?;
    }
    Ok(())
}

async fn tag_rows<S: CliStore>(store: &S, after: u64, up_to: Option<u64>) -> Result<Vec<TagRow>, CliError> {
    store
        .tag_rows(Some(Position::new(after)), up_to.map(Position::new))
        .await
        .map_err(CliError::store(format!(
            "cannot read the tag index after position {after}"
        )))
}
