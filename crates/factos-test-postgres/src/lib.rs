//! A throwaway PostgreSQL cluster for tests and benchmarks.
//!
//! [`Cluster::shared`] returns the cluster of this process, started on first
//! use: `FACTOS_TEST_DATABASE_URL` when it is set, otherwise a fresh cluster
//! initialised from the system's PostgreSQL binaries in a temporary
//! directory, listening only on a unix socket there, with durability off
//! (`fsync`, `synchronous_commit` and `full_page_writes`): tests need a real
//! server, not a durable one. When running as root the server runs as the
//! `postgres` user, since `initdb` refuses root.
//!
//! A watchdog process stops the cluster and removes its directory when the
//! test process exits, however it exits.
//!
//! [`Cluster::durable`] starts a second cluster with PostgreSQL's default
//! durability (every commit flushed to disk before it is acknowledged), for
//! benchmarks of what users run.
//!
//! Each test takes its own schema with [`Cluster::fresh_schema`], so tests
//! run in parallel on one server.
//!
//! [`HaCluster`] runs three PostgreSQL nodes under Patroni (with etcd),
//! replicating from one primary, for failover and read-replica tests.
//!
//! [`Cluster::pgbouncer`] puts a PgBouncer in transaction mode in front of
//! the cluster, for tests of what a pooler allows.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod ha;
mod pgbouncer;

pub use ha::{HaCluster, HaOptions, NODES, longest_silence};
pub use pgbouncer::{MAX_SCHEMAS, PgBouncer};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;
use tokio_postgres::{Config, NoTls};

/// Why no test database is available.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No PostgreSQL server binaries were found.
    #[error(
        "no PostgreSQL server binaries found (looked in $FACTOS_PG_BINDIR, /usr/lib/postgresql/*/bin and `pg_config --bindir`); install Debian's `postgresql` package or set FACTOS_TEST_DATABASE_URL"
    )]
    NoBinaries,
    /// A setup command failed.
    #[error("`{command}` failed: {output}")]
    Command {
        /// The command.
        command: String,
        /// What it printed.
        output: String,
    },
    /// A file system or process operation failed.
    #[error("cluster setup failed")]
    Io(#[from] std::io::Error),
    /// `FACTOS_TEST_DATABASE_URL` is not a valid connection string, or the
    /// server refused a connection.
    #[error("PostgreSQL connection failed")]
    Postgres(#[from] tokio_postgres::Error),
    /// `FACTOS_REQUIRE_PGBOUNCER` is set but no `pgbouncer` binary was
    /// found.
    #[error("FACTOS_REQUIRE_PGBOUNCER is set but no pgbouncer binary was found (apt-get install pgbouncer)")]
    NoPgBouncer,
    /// `FACTOS_REQUIRE_PATRONI` is set but `patroni` or `etcd` is not
    /// installed.
    #[error("FACTOS_REQUIRE_PATRONI is set but patroni or etcd is missing (apt-get install patroni etcd-server)")]
    NoPatroni,
    /// An earlier attempt to start the cluster failed.
    #[error("the test cluster could not be started earlier in this process: {0}")]
    Failed(String),
}

/// A running PostgreSQL server for tests.
#[derive(Debug)]
pub struct Cluster {
    config: Config,
    /// Where a cluster this process started keeps its data and socket.
    dir: Option<PathBuf>,
}

static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
static DURABLE: OnceLock<Result<Cluster, String>> = OnceLock::new();
static STOCK: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// The `postgres` user's password on the stock cluster (the others trust
/// every local connection).
pub const STOCK_PASSWORD: &str = "factos-stock";

/// How a cluster this process starts is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settings {
    /// Durability off, room for many connections and locks.
    Fast,
    /// The server's durability, room for many connections and locks.
    Durable,
    /// The server's defaults for everything but where it listens.
    Stock,
}
static SCHEMAS: AtomicU64 = AtomicU64::new(0);

impl Cluster {
    /// The cluster of this process, started on first use.
    ///
    /// # Errors
    ///
    /// [`ClusterError`] when neither `FACTOS_TEST_DATABASE_URL` nor local
    /// server binaries give a usable server.
    pub fn shared() -> Result<&'static Cluster, ClusterError> {
        Self::started(&SHARED, Settings::Fast)
    }

    /// A cluster of this process with the server's stock configuration,
    /// started on first use: default durability, `max_connections` (100)
    /// and `max_locks_per_transaction` (64), and password authentication
    /// (`scram-sha-256`; the user `postgres` has [`STOCK_PASSWORD`], which
    /// [`Cluster::config`] carries), for tests of what a request may cost a
    /// server configured as most are and of what its refusals say. `FACTOS_TEST_DATABASE_URL`,
    /// when set, serves instead, configured as it is.
    ///
    /// # Errors
    ///
    /// As [`Cluster::shared`].
    pub fn stock() -> Result<&'static Cluster, ClusterError> {
        Self::started(&STOCK, Settings::Stock)
    }

    /// The durable cluster of this process, started on first use: the
    /// server's default `fsync`, `synchronous_commit` and
    /// `full_page_writes` (all on), so every commit waits for its WAL
    /// flush. `FACTOS_TEST_DATABASE_URL`, when set, serves as both
    /// clusters, with whatever durability it has.
    ///
    /// # Errors
    ///
    /// As [`Cluster::shared`].
    pub fn durable() -> Result<&'static Cluster, ClusterError> {
        Self::started(&DURABLE, Settings::Durable)
    }

    fn started(
        cell: &'static OnceLock<Result<Cluster, String>>,
        settings: Settings,
    ) -> Result<&'static Cluster, ClusterError> {
        cell.get_or_init(|| Self::start(settings).map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e))))
            .as_ref()
            .map_err(|e| ClusterError::Failed(e.clone()))
    }

    fn start(settings: Settings) -> Result<Cluster, ClusterError> {
        if let Ok(url) = std::env::var("FACTOS_TEST_DATABASE_URL") {
            return Ok(Cluster {
                config: url.parse()?,
                dir: None,
            });
        }
        let bin = find_binaries().ok_or(ClusterError::NoBinaries)?;
        let dir = tempfile::Builder::new().prefix("fpg").tempdir_in("/tmp")?.keep();
        let as_postgres = running_as_root()?;
        if as_postgres {
            let (uid, gid) = (id("-u")?, id("-g")?);
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
        }
        let data = dir.join("data");
        let mut initdb = vec![
            "-D",
            path(&data)?,
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ];
        let password_file = dir.join("password");
        match settings {
            Settings::Stock => {
                // Passwords checked, as on a server set up for real use.
                std::fs::write(&password_file, STOCK_PASSWORD)?;
                if as_postgres {
                    std::os::unix::fs::chown(&password_file, Some(id("-u")?), Some(id("-g")?))?;
                }
                initdb.extend(["-A", "scram-sha-256", "--pwfile", path(&password_file)?]);
            }
            Settings::Fast | Settings::Durable => initdb.extend(["-A", "trust"]),
        }
        run(&bin, as_postgres, "initdb", &initdb)?;
        let tuning = match settings {
            Settings::Fast => {
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                 -c max_connections=400 -c max_locks_per_transaction=256"
            }
            Settings::Durable => "-c max_connections=400 -c max_locks_per_transaction=256",
            Settings::Stock => "",
        };
        let options = format!(
            "-c listen_addresses='' -c unix_socket_directories={} {tuning}",
            path(&dir)?
        );
        let log = dir.join("server.log");
        run(
            &bin,
            as_postgres,
            "pg_ctl",
            &[
                "-D",
                path(&data)?,
                "-l",
                path(&log)?,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        start_watchdog(&bin, as_postgres, &dir, &data)?;
        let mut config = Config::new();
        config.host_path(&dir).user("postgres").dbname("postgres");
        if settings == Settings::Stock {
            config.password(STOCK_PASSWORD);
        }
        Ok(Cluster { config, dir: Some(dir) })
    }

    /// How to connect to the cluster's database.
    pub fn config(&self) -> Config {
        self.config.clone()
    }

    /// A connection string for the cluster's database: the
    /// `FACTOS_TEST_DATABASE_URL` it was given, or a key-value string for
    /// the cluster this process started (`host=<socket dir> user=postgres
    /// dbname=postgres`).
    pub fn connection_string(&self) -> String {
        if let Ok(url) = std::env::var("FACTOS_TEST_DATABASE_URL") {
            return url;
        }
        let host = self
            .dir
            .as_deref()
            .map(|dir| dir.display().to_string())
            .unwrap_or_default();
        let password = self
            .config
            .get_password()
            .map(|p| format!(" password={}", String::from_utf8_lossy(p)))
            .unwrap_or_default();
        format!("host={host} user=postgres dbname=postgres{password}")
    }

    /// The directory of a cluster this process started (its server log is
    /// `server.log` there); `None` for `FACTOS_TEST_DATABASE_URL`.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Creates a new, empty schema and returns a connection config whose
    /// `search_path` is that schema, with the schema's name.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Postgres`] when the server cannot be reached.
    pub async fn fresh_schema(&self) -> Result<(Config, String), ClusterError> {
        let n = SCHEMAS.fetch_add(1, Ordering::Relaxed);
        let schema = format!("t{}_{n}", std::process::id());
        let (client, connection) = self.config.connect(NoTls).await?;
        let driver = tokio::spawn(connection);
        client.batch_execute(&format!("CREATE SCHEMA {schema}")).await?;
        drop(client);
        let _ = driver.await;
        let mut config = self.config.clone();
        config.options(format!("-c search_path={schema}"));
        Ok((config, schema))
    }
}

fn path(p: &Path) -> Result<&str, ClusterError> {
    p.to_str().ok_or_else(|| ClusterError::Command {
        command: "path".into(),
        output: format!("{} is not UTF-8", p.display()),
    })
}

fn find_binaries() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("FACTOS_PG_BINDIR") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().or_else(|| {
        let out = Command::new("pg_config").arg("--bindir").output().ok()?;
        let bin = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
        bin.join("initdb").exists().then_some(bin)
    })
}

/// `name` as Debian installs it: in `/usr/sbin`, `/usr/bin` or
/// `/usr/local/bin`, the first where it exists.
fn system_binary(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/usr/local/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.exists())
}

fn running_as_root() -> Result<bool, ClusterError> {
    let out = Command::new("id").arg("-u").output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn id(flag: &str) -> Result<u32, ClusterError> {
    let out = Command::new("id").args([flag, "postgres"]).output()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| ClusterError::Command {
            command: format!("id {flag} postgres"),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
}

/// The command for `tool`, run as the `postgres` user when we are root.
fn command(bin: &Path, as_postgres: bool, tool: &str) -> Command {
    let tool = bin.join(tool);
    as_user(&tool, as_postgres)
}

/// `program`, run as the `postgres` user when `as_postgres`.
fn as_user(tool: &Path, as_postgres: bool) -> Command {
    if as_postgres {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"])
            .arg(tool);
        command
    } else {
        Command::new(tool)
    }
}

fn run(bin: &Path, as_postgres: bool, tool: &str, args: &[&str]) -> Result<(), ClusterError> {
    let output = command(bin, as_postgres, tool)
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if output.status.success() {
        return Ok(());
    }
    Err(ClusterError::Command {
        command: format!("{tool} {}", args.join(" ")),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

/// Starts a process that waits for this one to exit, then stops the server
/// and removes its directory.
fn start_watchdog(bin: &Path, as_postgres: bool, dir: &Path, data: &Path) -> Result<(), ClusterError> {
    let stop = command(bin, as_postgres, "pg_ctl");
    let mut stop_line = vec![stop.get_program().to_string_lossy().into_owned()];
    stop_line.extend(stop.get_args().map(|a| a.to_string_lossy().into_owned()));
    stop_line.extend([
        "-D".into(),
        path(data)?.into(),
        "-m".into(),
        "immediate".into(),
        "stop".into(),
    ]);
    let quoted: Vec<String> = stop_line
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    at_exit(&format!(
        "{} >/dev/null 2>&1; rm -rf '{}'",
        quoted.join(" "),
        path(dir)?
    ))
}

/// Runs the shell command `cleanup` once this process has exited, however
/// it exits.
fn at_exit(cleanup: &str) -> Result<(), ClusterError> {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; {cleanup}",
        pid = std::process::id(),
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(())
}
