//! Running the real `factos` binary against real stores.

#![allow(dead_code, reason = "each test file uses part of the support")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The binary under test.
pub fn factos() -> Command {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin!("factos"));
    command.env_remove("FACTOS_DATABASE_URL").env_remove("FACTOS_TOKEN");
    command
}

/// Runs `factos` with `args` and `stdin`, returning its output.
pub fn run(args: &[&str], stdin: &str) -> Result<Output, std::io::Error> {
    let mut child = factos()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes())?;
    }
    child.wait_with_output()
}

/// Runs `factos` and requires success; returns standard output.
pub fn ok(args: &[&str], stdin: &str) -> Result<String, Box<dyn std::error::Error>> {
    let output = run(args, stdin)?;
    if !output.status.success() {
        return Err(format!(
            "factos {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// Runs `factos`, requires failure (exit code 1, or 2 for usage) with a
/// one-line error;
/// returns that line.
pub fn fails(args: &[&str], stdin: &str) -> Result<String, Box<dyn std::error::Error>> {
    let output = run(args, stdin)?;
    let stderr = String::from_utf8(output.stderr)?;
    assert!(
        matches!(output.status.code(), Some(1 | 2)),
        "factos {args:?}: {:?} {stderr}",
        output.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    Ok(errors[0].to_owned())
}

/// A fresh directory for SQLite files, kept on failure for debugging.
pub struct Scratch {
    dir: TempDir,
}

impl Scratch {
    pub fn new() -> Result<Self, std::io::Error> {
        Ok(Self {
            dir: tempfile::Builder::new().prefix("factos-cli-").tempdir()?,
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `--database <dir>/<name>` as arguments.
    pub fn db(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// `n` events as `append` lines: types `Placed`/`Shipped`, tags
/// `order:<i % 50>`, JSON payloads.
pub fn append_lines(n: usize) -> String {
    (0..n)
        .map(|i| {
            let kind = if i % 3 == 0 { "Shipped" } else { "Placed" };
            format!(
                "{{\"type\":\"{kind}\",\"tags\":[\"order:{}\",\"batch:x\"],\"data\":{{\"i\":{i}}},\"metadata\":{{\"by\":\"test\"}}}}\n",
                i % 50
            )
        })
        .collect()
}

/// `n` records in export form, over `streams` streams, with JSON and binary
/// payloads: what an export of a store written by an application holds.
pub fn export_lines(n: u64, streams: u64) -> String {
    let mut out = String::new();
    for position in 1..=n {
        let stream = position % streams;
        let revision = (position - 1) / streams;
        let data = match position % 4 {
            0 => "\"dataBase64\":\"AAH/\"".to_owned(),
            _ => format!("\"data\":{{\"n\":{position},\"s\":\"x y\"}}"),
        };
        out.push_str(&format!(
            "{{\"position\":{position},\"id\":\"00000000-0000-4000-8000-{position:012}\",\"stream\":\"s-{stream}\",\"revision\":{revision},\"type\":\"T{}\",\"version\":1,\"tags\":[\"k:{}\",\"s:{stream}\"],\"metadata\":{{}},\"recordedAt\":\"2025-01-01T00:00:00.{:06}Z\",{data}}}\n",
            position % 5,
            position % 97,
            position % 1_000_000
        ));
    }
    out
}

/// A URL for the test PostgreSQL cluster (started on first use).
pub fn pg_url() -> Result<String, Box<dyn std::error::Error>> {
    if let Ok(url) = std::env::var("FACTOS_TEST_DATABASE_URL") {
        return Ok(url);
    }
    let cluster = factos_test_postgres::Cluster::shared()?;
    let dir = cluster.dir().ok_or("the test cluster has no directory")?;
    Ok(format!("postgres:///postgres?host={}&user=postgres", dir.display()))
}

/// A schema name no other test uses.
pub fn pg_schema(label: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("cli_{label}_{}_{n}", std::process::id())
}

/// Runs `sql` in `schema` on the test cluster.
pub async fn pg_execute(schema: &str, sql: &str) -> Result<(), Box<dyn std::error::Error>> {
    let config = factos_test_postgres::Cluster::shared()?.config();
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path = {schema}; {sql}"))
        .await?;
    drop(client);
    let _ = driver.await;
    Ok(())
}

/// Damage done to a store holding `export_lines(40, 4)`, in SQL both
/// backends run: stream s-3 loses its revision 1 (position 7, so position
/// 11 follows a gap), position 12's tag `k:12` loses its index row, and the
/// index gains a tag position 20 does not carry.
pub const CORRUPTION: &str = "DELETE FROM event_tags WHERE position = 7; DELETE FROM events WHERE position = 7; \
     DELETE FROM event_tags WHERE position = 12 AND tag = 'k:12'; \
     INSERT INTO event_tags (tag, position, event_type) VALUES ('ghost', 20, 'T0');";

/// Checks that `check` failed and reported each problem of [`CORRUPTION`]
/// at its position.
pub fn assert_corruption_reported(output: &Output) -> Result<(), Box<dyn std::error::Error>> {
    assert_eq!(output.status.code(), Some(1));
    let report = String::from_utf8(output.stdout.clone())?;
    for line in [
        "position 11: stream s-3 continues at revision 1, found 2",
        "position 12: tag \"k:12\" has no row in the tag index",
        "position 20: the tag index holds \"ghost\"",
    ] {
        assert!(report.contains(line), "{line} in {report}");
    }
    assert!(String::from_utf8(output.stderr.clone())?.contains("found 3 problems in 39 events"));
    Ok(())
}

/// A long-running `factos` (`tail`, `import`) whose standard output lines
/// arrive on a channel.
pub struct Running {
    pub child: std::process::Child,
    pub lines: std::sync::mpsc::Receiver<String>,
}

/// Starts `factos args`, reading its standard output line by line.
pub fn start(args: &[&str]) -> Result<Running, Box<dyn std::error::Error>> {
    use std::io::BufRead;
    let mut child = factos()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    Ok(Running { child, lines })
}

/// Sends SIGINT (Ctrl-C) to a running `factos`.
pub fn interrupt(child: &std::process::Child) -> Result<(), std::io::Error> {
    Command::new("kill").args(["-INT", &child.id().to_string()]).status()?;
    Ok(())
}

/// A running server; killed when dropped.
pub struct Server {
    /// The `factos serve` process.
    pub child: std::process::Child,
    /// `http://<address>`.
    pub base: String,
}

impl Server {
    /// Starts `factos serve` on `store` (its flags) with `extra` flags, on a
    /// free loopback port.
    pub fn start(store: &[&str], extra: &[&str]) -> Result<Self, Box<dyn std::error::Error>> {
        let mut child = factos()
            .arg("serve")
            .args(store)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line {line:?}"))?
            .to_owned();
        Ok(Self { child, base })
    }

    /// The server's URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A migrated SQLite store in `scratch`, as `factos` flags.
pub fn sqlite_store(scratch: &Scratch) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let db = scratch.db("served.db");
    ok(&["migrate", "--database", &db], "")?;
    Ok(vec!["--database".into(), db])
}

/// A migrated PostgreSQL store in a fresh schema, as `factos` flags.
pub fn postgres_store() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let args = vec![
        "--database-url".into(),
        pg_url()?,
        "--schema".into(),
        pg_schema("serve"),
    ];
    let refs: Vec<&str> = std::iter::once("migrate")
        .chain(args.iter().map(String::as_str))
        .collect();
    ok(&refs, "")?;
    Ok(args)
}

/// `args` as string slices.
pub fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
