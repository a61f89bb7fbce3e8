//! The command line: global store selection and one subcommand each.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;

/// Inspect, follow, verify, back up, copy and serve a factos event store.
///
/// Choose the store with `--database PATH` (SQLite) or `--database-url URL`
/// (`postgres://…`, `sqlite:PATH`), or set FACTOS_DATABASE_URL.
#[derive(Debug, Parser)]
#[command(name = "factos", version, propagate_version = true)]
pub struct Cli {
    /// The store to use.
    #[command(flatten)]
    pub store: StoreArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Which store a command works on (shown under their own heading in
/// every command's help).
#[derive(Debug, Args)]
#[command(next_help_heading = "Store")]
pub struct StoreArgs {
    /// A SQLite database file (wins over --database-url and
    /// FACTOS_DATABASE_URL).
    #[arg(long, global = true, value_name = "PATH")]
    pub database: Option<PathBuf>,
    /// A store URL: `postgres://user:pass@host/db`, `sqlite:PATH`.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "FACTOS_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// The PostgreSQL schema holding the store (default: the connection's
    /// search path).
    #[arg(long, global = true, value_name = "NAME")]
    pub schema: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or upgrade the store's schema.
    Migrate(JsonFlag),
    /// Count events, streams, types and tags; first and last event; size.
    Stats(StatsArgs),
    /// Read the events matching a query.
    Read(ReadArgs),
    /// Read one stream with its revisions.
    Stream(StreamArgs),
    /// Follow new events as they commit, until Ctrl-C.
    Tail(TailArgs),
    /// Append events given as JSON Lines to a stream.
    Append(AppendArgs),
    /// Write every event as JSON Lines (full records).
    Export(ExportArgs),
    /// Load JSON Lines written by `export`, keeping positions, ids, streams,
    /// revisions and times.
    Import(ImportArgs),
    /// Copy one store into another (export piped into import), verified by
    /// count and checksum.
    Copy(CopyArgs),
    /// Verify the store's integrity. Memory: one page of events (at most
    /// 10,000 and 32 MiB) plus about 50 bytes per event and 100 per stream
    /// for the id and revision checks (about 60 MB for a million events).
    Check(JsonFlag),
    /// Add tags computed from stored payloads to the tag index (events are
    /// not rewritten); resumable and idempotent.
    Retag(RetagArgs),
    /// Serve the store over HTTP.
    Serve(ServeArgs),
    /// Measure appends and dispatches per second on this store.
    Bench(BenchArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// `factos retag`.
#[derive(Debug, Args)]
pub struct RetagArgs {
    /// The retag's name: its progress and staged tags are kept under it,
    /// so running it again resumes.
    #[arg(long)]
    pub name: String,
    /// A tag to add, with `{/json/pointer}` standing for a field of the
    /// JSON payload (`customer:{/customer}`); repeatable.
    #[arg(long = "tag", required = true, value_name = "TEMPLATE")]
    pub tags: Vec<String>,
    /// Only events of this type (repeatable); all events when absent.
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Give no tag to an event whose payload lacks a field a template
    /// names, or is not JSON, instead of stopping there.
    #[arg(long)]
    pub skip_missing: bool,
    /// Events examined per batch.
    #[arg(long, default_value_t = factos::retag::DEFAULT_BATCH)]
    pub batch: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--json`.
#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `factos stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// How many of the most used tags to show.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A context query on the command line: `--type` (repeatable, OR) and
/// `--tag` (repeatable, AND) build one item; `--item` starts the next.
/// No flag at all means every event.
#[derive(Debug, Args, Default)]
pub struct QueryArgs {
    /// An event type of the current item (repeat: any of them).
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// A tag of the current item, like `course:c1` (repeat: all of them).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Starts another query item (items are OR-combined).
    // Appended (not counted) so that each occurrence keeps its index.
    #[arg(long = "item", num_args = 0, default_missing_value = "", action = clap::ArgAction::Append)]
    pub items: Vec<String>,
}

/// `factos read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The query.
    #[command(flatten)]
    pub query: QueryArgs,
    /// Start at this position (inclusive).
    #[arg(long, value_name = "POSITION")]
    pub from: Option<u64>,
    /// Return at most this many events; the output says how to get more.
    #[arg(long, default_value_t = 1_000, conflicts_with = "all")]
    pub limit: usize,
    /// Return every matching event (printed page by page as it is read).
    #[arg(long)]
    pub all: bool,
    /// Newest first.
    #[arg(long)]
    pub backwards: bool,
    /// Print JSON Lines (full records) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `factos stream`.
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// The stream.
    pub name: String,
    /// Start at this revision.
    #[arg(long, value_name = "REVISION", default_value_t = 0)]
    pub from: u64,
    /// Print JSON Lines (full records) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `factos tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The query to follow.
    #[command(flatten)]
    pub query: QueryArgs,
    /// Print the matching events already in the store first.
    #[arg(long, conflicts_with = "after")]
    pub from_start: bool,
    /// Resume after this cursor (as printed with `--json`).
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
    /// Print JSON Lines (full records with their cursor).
    #[arg(long)]
    pub json: bool,
}

/// `factos append`.
#[derive(Debug, Args)]
pub struct AppendArgs {
    /// The stream to append to.
    #[arg(long)]
    pub stream: String,
    /// Read events from this file instead of standard input.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// The stream's expected revision: a number, `no-stream`, `exists` or
    /// `any`.
    #[arg(long, value_name = "REVISION")]
    pub expect: Option<String>,
    /// Refuse the append if an event matching the query flags was appended
    /// (after `--after`).
    #[arg(long)]
    pub fail_if_match: bool,
    /// The query of `--fail-if-match`.
    #[command(flatten)]
    pub query: QueryArgs,
    /// The position the condition starts after.
    #[arg(long, value_name = "POSITION", requires = "fail_if_match")]
    pub after: Option<u64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `factos export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Start at this position (inclusive): an incremental export, for
    /// `import --append`.
    #[arg(long, value_name = "POSITION")]
    pub from: Option<u64>,
}

/// `factos import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Read from this file instead of standard input.
    #[arg(long, short, value_name = "PATH")]
    pub input: Option<PathBuf>,
    /// Add the records after a non-empty store's events (their positions
    /// must come after its last one), instead of refusing.
    #[arg(long)]
    pub append: bool,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `factos copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The source: a SQLite path or a store URL.
    #[arg(long, value_name = "PATH|URL")]
    pub from: String,
    /// The target: a SQLite path or a store URL (created and migrated when
    /// new).
    #[arg(long, value_name = "PATH|URL")]
    pub to: String,
    /// The source's PostgreSQL schema.
    #[arg(long, value_name = "NAME")]
    pub from_schema: Option<String>,
    /// The target's PostgreSQL schema.
    #[arg(long, value_name = "NAME")]
    pub to_schema: Option<String>,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `factos serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on, `HOST:PORT` (a name such as
    /// `localhost:8080` or an IP); loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Require `Authorization: Bearer TOKEN` on every request except
    /// `/health`.
    #[arg(long, env = "FACTOS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Refuse request bodies larger than this many bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub max_body: usize,
    /// Return at most this many events per read.
    #[arg(long, default_value_t = 10_000)]
    pub max_read: usize,
    /// End a read's page once its events add up to this many bytes (it
    /// holds at least one event).
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub max_read_bytes: usize,
    /// Serve at most this many connections at once; more clients wait to
    /// be accepted.
    #[arg(long, default_value_t = 512)]
    pub max_connections: usize,
    /// Close a connection that takes longer than this many seconds to send
    /// a request's headers (idle keep-alive connections included).
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout: f64,
    /// On SIGINT or SIGTERM, wait at most this many seconds for requests
    /// in flight, then exit.
    #[arg(long, default_value_t = 10.0)]
    pub shutdown_timeout: f64,
}

/// `factos bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Concurrent writers in the parallel measurements.
    #[arg(long, default_value_t = 8)]
    pub writers: usize,
    /// Run on a store that already holds events (the benchmark adds its own).
    #[arg(long)]
    pub force: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `factos completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: Shell,
}

/// The clap command: for completions, and for reading the query flags in
/// the order they were given.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
