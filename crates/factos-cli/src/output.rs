//! Human output: tables and progress bars (drawn only on a terminal).

use std::time::Duration;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use factos::StoredEvent;
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::CliError;
use crate::record::{format_time, preview};
use crate::store::CliStore;

/// A table with `header`, sized to the terminal.
pub fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = plain_table();
    table.set_header(header);
    table
}

/// A table without a header (label, value rows), sized to the terminal.
pub fn plain_table() -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table
}

/// Standard output, buffered; a closed pipe ends the command quietly
/// (see `main`).
#[derive(Debug)]
pub struct Out(std::io::BufWriter<std::io::Stdout>);

impl Out {
    /// Buffered standard output.
    pub fn stdout() -> Self {
        Out(std::io::BufWriter::new(std::io::stdout()))
    }

    /// Writes `line` and a newline.
    pub fn line(&mut self, line: impl std::fmt::Display) -> Result<(), CliError> {
        use std::io::Write;
        writeln!(self.0, "{line}").map_err(CliError::io("cannot write to standard output"))
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> Result<(), CliError> {
        use std::io::Write;
        self.0.flush().map_err(CliError::io("cannot write to standard output"))
    }
}

/// Events as a table: position, stream and revision, type, tags, time and
/// a payload preview.
/// `n` and the noun for it: `1 event`, `2 events`, `0 events`.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

pub fn events_table(events: &[StoredEvent]) -> Table {
    let mut table = table(["position", "stream", "rev", "type", "tags", "recorded at", "data"]);
    for event in events {
        table.add_row([
            event.position.to_string(),
            event.stream.to_string(),
            event.revision.to_string(),
            event.event_type.to_string(),
            event.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" "),
            format_time(event.recorded_at),
            preview(&event.event, 48),
        ]);
    }
    table
}

/// A bar's rate in whole items per second (`24,953/s`).
fn rate(state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write) {
    let per_second = state.per_sec().round() as u64;
    let _ = write!(out, "{}/s", indicatif::HumanCount(per_second));
}

/// A progress bar on standard error counting `what` up to `total` (a
/// spinner when unknown). Hidden when standard error is not a terminal.
pub fn progress(total: Option<u64>, what: &str) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {human_pos}/{human_len} ({rate}, eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .with_key("rate", rate)
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {human_pos} ({rate})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
                .with_key("rate", rate),
        ),
    };
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A progress bar counting `what` up to the store's number of events, which
/// is asked only when the bar is drawn (standard error is a terminal).
pub async fn store_progress<S: CliStore>(store: &S, what: &str) -> ProgressBar {
    use std::io::IsTerminal;
    let total = match std::io::stderr().is_terminal() {
        true => store.stats(0).await.ok().map(|stats| stats.events),
        false => None,
    };
    progress(total, what)
}

/// A byte count for humans.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

/// Prints `value` as one line of JSON.
pub fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn byte_counts_read_naturally() {
        assert_eq!(super::bytes(512), "512 B");
        assert_eq!(super::bytes(1536), "1.5 KiB");
        assert_eq!(super::bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
