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
mod durability;
mod follow;
mod kurrent;
mod latency;
mod parallel;
mod raw;
mod replication;
mod scaling;
mod snapshots;
mod sqlite_parallel;
mod stats;
mod tag_schemas;
mod wire;
mod wire_budget;
mod workload;

use std::time::Duration;

use clap::Parser;

use crate::durability::Durability;

#[derive(Debug, Parser)]
#[command(about = "Measures factos against raw SQL and a table-lock baseline; prints markdown.")]
struct Args {
    /// Small sizes and short runs: checks that the harness works, in seconds.
    #[arg(long)]
    quick: bool,
    /// Run only these sections: durable settings first (1 append, 2 PostgreSQL parallel dispatch, 3 SQLite parallel
    /// dispatch), 4 round trips per operation, then with PostgreSQL's durability off (5 append, 6 parallel dispatch,
    /// 7 context reads as the log grows, 8 latency, 9 followers, 10 KurrentDB reads), 11 tag schema alternatives (durable),
    /// 12 decisions on long contexts with and without snapshots (durable), 13 replication and failover on a Patroni
    /// cluster (durable).
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
    round_trip_ops: u64,
    snapshot_sizes: Vec<u64>,
    snapshot_dispatches: u32,
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
            round_trip_ops: 20,
            snapshot_sizes: vec![1_000, 10_000],
            snapshot_dispatches: 10,
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
            round_trip_ops: 200,
            snapshot_sizes: vec![1_000, 10_000, 100_000],
            snapshot_dispatches: 60,
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
    let mut settings = Vec::new();
    let mut pg_version = String::new();
    for durability in [Durability::Durable, Durability::Off] {
        let (client, connection) = durability.cluster()?.config().connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        pg_version = client.query_one("SELECT version()", &[]).await?.get(0);
        let found: Vec<String> = client
            .query(
                "SELECT name || '=' || setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes') ORDER BY name",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        settings.push(format!("{durability:?} cluster: {}", found.join(", ")));
    }
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut report = Report::default();
    report.lines.push(format!(
        "Machine: {}. {pg_version}: two throwaway clusters on unix sockets ({}). SQLite: WAL, file on local disk (ext4). \
         Commit measured: {commit}. Mode: {}.",
        machine(),
        settings.join("; "),
        if args.quick { "quick (harness check, not results)" } else { "full" }
    ));
    report.lines.push("\n## Durable settings".into());
    if wanted(1) {
        append::run(&config, &mut report, Durability::Durable, "1.").await?;
    }
    if wanted(2) {
        parallel::run(&config, &mut report, Durability::Durable, "2.").await?;
    }
    if wanted(3) {
        sqlite_parallel::run(&config, &mut report, "3.").await?;
    }
    if wanted(4) {
        wire::run(&config, &mut report, "4.").await?;
    }
    if wanted(11) {
        tag_schemas::run(&config, &mut report).await?;
    }
    if wanted(12) {
        snapshots::run(&config, &mut report).await?;
    }
    if wanted(13) {
        replication::run(&config, &mut report).await?;
    }
    report.lines.push("\n## PostgreSQL durability off".into());
    if wanted(5) {
        append::run(&config, &mut report, Durability::Off, "5.").await?;
    }
    if wanted(6) {
        parallel::run(&config, &mut report, Durability::Off, "6.").await?;
    }
    if wanted(8) {
        latency::run(&config, &mut report).await?;
    }
    if wanted(9) {
        follow::run(&config, &mut report).await?;
    }
    if wanted(7) {
        scaling::run(&config, &mut report).await?;
    }
    if wanted(10) {
        kurrent::run(&config, &mut report).await?;
    }
    println!("{}", report.lines.join("\n"));
    Ok(())
}
