//! The factos benchmark harness.
//!
//! ```text
//! cargo run --release -p factos-bench            # the full run written up in BENCHMARKS.md
//! cargo run --release -p factos-bench -- --quick # seconds, small sizes: proves the harness works
//! ```
//!
//! Every comparison is measured side by side in one run, with medians over
//! repeated runs, and printed as markdown. PostgreSQL is a throwaway
//! cluster started by the harness (see `factos-test-postgres`; or
//! `FACTOS_TEST_DATABASE_URL`), SQLite a file in a temporary directory.

mod append;
mod follow;
mod kurrent;
mod latency;
mod parallel;
mod raw;
mod scaling;
mod stats;
mod workload;

use std::time::Duration;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Measures factos against raw SQL and a table-lock baseline; prints markdown.")]
struct Args {
    /// Small sizes and short runs: checks that the harness works, in seconds.
    #[arg(long)]
    quick: bool,
    /// Run only these sections (1 append, 2 parallel, 3 scaling, 4 latency, 5 followers, 6 KurrentDB reads).
    #[arg(long, value_delimiter = ',')]
    sections: Vec<u8>,
}

/// Sizes and durations of one run.
#[derive(Debug)]
pub struct Config {
    repeats: usize,
    single_appends: u64,
    batched_events: u64,
    parallel_duration: Duration,
    scaling_sizes: Vec<u64>,
    latency_dispatches: u32,
    kurrent_sizes: Vec<u64>,
}

impl Config {
    fn quick() -> Self {
        Self {
            repeats: 1,
            single_appends: 100,
            batched_events: 1_000,
            parallel_duration: Duration::from_millis(200),
            scaling_sizes: vec![1_000, 10_000],
            latency_dispatches: 50,
            kurrent_sizes: vec![1_000],
        }
    }

    fn full() -> Self {
        Self {
            repeats: 3,
            single_appends: 2_000,
            batched_events: 50_000,
            parallel_duration: Duration::from_secs(3),
            scaling_sizes: vec![10_000, 100_000, 1_000_000],
            latency_dispatches: 1_000,
            kurrent_sizes: vec![10_000, 50_000],
        }
    }
}

/// Markdown tables, printed at the end.
#[derive(Debug, Default)]
pub struct Report {
    lines: Vec<String>,
}

impl Report {
    fn section(&mut self, title: &str, what: &str, columns: &[&str]) {
        eprintln!("running: {title}");
        self.lines.push(format!("\n### {title}\n\n{what}\n"));
        self.lines.push(format!("| {} |", columns.join(" | ")));
        self.lines.push(format!(
            "|{}|",
            columns.iter().map(|_| "---").collect::<Vec<_>>().join("|")
        ));
    }

    fn row(&mut self, cells: &[String]) {
        let line = format!("| {} |", cells.join(" | "));
        eprintln!("  {line}");
        self.lines.push(line);
    }

    fn note(&mut self, text: &str) {
        self.lines.push(format!("\n{text}"));
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({cpu}), SQLite {}", rusqlite::version())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = if args.quick { Config::quick() } else { Config::full() };
    let wanted = |n: u8| args.sections.is_empty() || args.sections.contains(&n);
    let cluster = factos_test_postgres::Cluster::shared()?;
    let (client, connection) = cluster.config().connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let pg_version: String = client.query_one("SELECT version()", &[]).await?.get(0);
    let durability: Vec<String> = client
        .query(
            "SELECT name || '=' || setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes') ORDER BY name",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut report = Report::default();
    report.lines.push(format!(
        "Machine: {}. {pg_version}, throwaway cluster on a unix socket ({}). SQLite: WAL, synchronous=NORMAL, file on local disk. \
         Mode: {}.",
        machine(),
        durability.join(", "),
        if args.quick { "quick (harness check, not results)" } else { "full" }
    ));
    if wanted(1) {
        append::run(&config, &mut report).await?;
    }
    if wanted(2) {
        parallel::run(&config, &mut report).await?;
    }
    if wanted(4) {
        latency::run(&config, &mut report).await?;
    }
    if wanted(5) {
        follow::run(&config, &mut report).await?;
    }
    if wanted(3) {
        scaling::run(&config, &mut report).await?;
    }
    if wanted(6) {
        kurrent::run(&config, &mut report).await?;
    }
    println!("{}", report.lines.join("\n"));
    Ok(())
}
