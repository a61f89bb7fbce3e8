//! A highly available PostgreSQL cluster for tests: etcd and three
//! PostgreSQL nodes managed by Patroni, on loopback ports.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::{Config, NoTls};

use crate::{ClusterError, as_user, at_exit, find_binaries, id, path, running_as_root, system_binary};

/// How many PostgreSQL nodes a [`HaCluster`] runs.
pub const NODES: usize = 3;

/// How a [`HaCluster`] replicates and syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HaOptions {
    /// Patroni's `synchronous_mode`: a commit is acknowledged once a
    /// synchronous standby has it, and only that standby may be promoted.
    pub synchronous: bool,
    /// Whether the nodes flush to disk (`fsync`, `full_page_writes`):
    /// on for benchmarks of what users run; off for tests, whose kills are
    /// process kills, not power losses (the page cache survives them).
    pub fsync: bool,
}

impl HaOptions {
    /// Synchronous replication, no flushing: for tests.
    pub const TEST: HaOptions = HaOptions {
        synchronous: true,
        fsync: false,
    };
}

/// A row of `patronictl list`.
#[derive(Debug)]
struct Member {
    name: String,
    role: String,
    state: String,
}

/// One node: a Patroni process and the PostgreSQL server it manages.
#[derive(Debug)]
struct Node {
    name: String,
    pg_port: u16,
    config: PathBuf,
    data: PathBuf,
}

/// etcd and three Patroni-managed PostgreSQL nodes replicating from one
/// primary, started from the system's packages (`etcd-server`, `patroni`,
/// a PostgreSQL server) in a temporary directory. Dropping it (or the test
/// process exiting, however it exits) kills every process and removes the
/// directory.
///
/// Patroni runs with a short loop (`ttl` 10 s, `loop_wait` 1 s): a primary
/// killed with its Patroni is replaced within about `ttl`.
#[derive(Debug)]
pub struct HaCluster {
    dir: PathBuf,
    nodes: Vec<Node>,
    options: HaOptions,
    as_postgres: bool,
    patroni: PathBuf,
    /// Each node's Patroni process, while it runs.
    patronis: std::sync::Mutex<Vec<Option<Child>>>,
}

/// Patroni's leader key time-to-live, in seconds: how long a killed
/// primary keeps its leadership.
const TTL: u64 = 10;

impl HaCluster {
    /// Starts a cluster and waits until it has a primary and (when
    /// `options.synchronous`) a synchronous standby; `Ok(None)` with the
    /// reason printed when `patroni` or `etcd` is not installed.
    ///
    /// # Errors
    ///
    /// [`ClusterError::NoPatroni`] when they are absent but
    /// `FACTOS_REQUIRE_PATRONI` is set (CI sets it, so the HA tests cannot
    /// silently stop running); [`ClusterError`] when the cluster does not
    /// start.
    pub fn start(options: HaOptions) -> Result<Option<HaCluster>, ClusterError> {
        let (Some(patroni), Some(etcd)) = (system_binary("patroni"), system_binary("etcd")) else {
            if std::env::var_os("FACTOS_REQUIRE_PATRONI").is_some() {
                return Err(ClusterError::NoPatroni);
            }
            eprintln!("SKIPPED: no patroni or etcd binary (apt-get install patroni etcd-server)");
            return Ok(None);
        };
        let bin = find_binaries().ok_or(ClusterError::NoBinaries)?;
        let dir = tempfile::Builder::new().prefix("fha").tempdir_in("/tmp")?.keep();
        let mut cleanup = format!("pkill -9 -f '{}'", processes_in(&dir)?);
        if std::env::var_os("FACTOS_KEEP_HA_LOGS").is_none() {
            cleanup.push_str(&format!("; sleep 0.5; rm -rf '{}'", path(&dir)?));
        }
        at_exit(&cleanup)?;
        let as_postgres = running_as_root()?;
        let [etcd_client, etcd_peer, ports @ ..] = free_ports::<{ 2 + 2 * NODES }>()?;
        let etcd_log = std::fs::File::create(dir.join("etcd.log"))?;
        Command::new(etcd)
            .args(["--name", "etcd", "--data-dir"])
            .arg(dir.join("etcd"))
            .args([
                "--listen-client-urls",
                &format!("http://127.0.0.1:{etcd_client}"),
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{etcd_client}"),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{etcd_peer}"),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{etcd_peer}"),
                "--initial-cluster",
                &format!("etcd=http://127.0.0.1:{etcd_peer}"),
            ])
            .stdin(Stdio::null())
            .stdout(etcd_log.try_clone()?)
            .stderr(etcd_log)
            .spawn()?;
        let mut nodes = Vec::with_capacity(NODES);
        for n in 0..NODES {
            let name = format!("node{}", n + 1);
            let (pg_port, api_port) = (ports[2 * n], ports[2 * n + 1]);
            let data = dir.join(&name);
            let config = dir.join(format!("{name}.yml"));
            std::fs::write(
                &config,
                patroni_config(&name, &dir, &bin, &data, pg_port, api_port, etcd_client, options)?,
            )?;
            nodes.push(Node {
                name,
                pg_port,
                config,
                data,
            });
        }
        if as_postgres {
            chown_tree(&dir)?;
        }
        let cluster = HaCluster {
            dir,
            nodes,
            options,
            as_postgres,
            patroni,
            patronis: std::sync::Mutex::new((0..NODES).map(|_| None).collect()),
        };
        for n in 0..NODES {
            cluster.start_node(n)?;
        }
        cluster.wait_ready(Duration::from_secs(120))?;
        Ok(Some(cluster))
    }

    /// A connection string that reaches whichever node is the primary:
    /// every node's address, `target_session_attrs=read-write`.
    pub fn primary_url(&self) -> String {
        let hosts: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.pg_port)).collect();
        format!(
            "postgres://postgres@{}/postgres?target_session_attrs=read-write&connect_timeout=2",
            hosts.join(",")
        )
    }

    /// How to connect to node `n` alone.
    pub fn node_config(&self, n: usize) -> Config {
        let mut config = Config::new();
        config
            .host("127.0.0.1")
            .port(self.nodes[n].pg_port)
            .user("postgres")
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(2));
        config
    }

    /// The node that is the primary now (the one that accepts writes), if
    /// any answers.
    pub async fn primary(&self) -> Option<usize> {
        for n in 0..NODES {
            if let Ok(false) = self.in_recovery(n).await {
                return Some(n);
            }
        }
        None
    }

    /// A node that is a standby now, if any answers.
    pub async fn standby(&self) -> Option<usize> {
        for n in 0..NODES {
            if let Ok(true) = self.in_recovery(n).await {
                return Some(n);
            }
        }
        None
    }

    async fn in_recovery(&self, n: usize) -> Result<bool, ClusterError> {
        let (client, connection) = self.node_config(n).connect(NoTls).await?;
        let driver = tokio::spawn(connection);
        let recovery = client.query_one("SELECT pg_is_in_recovery()", &[]).await?.try_get(0)?;
        drop(client);
        let _ = driver.await;
        Ok(recovery)
    }

    /// Kills node `n` as a crash would: its Patroni and every PostgreSQL
    /// process, with `SIGKILL`, so it neither hands over nor releases its
    /// leadership (the others wait out the leader key's `ttl`).
    pub fn kill(&self, n: usize) -> Result<(), ClusterError> {
        let node = &self.nodes[n];
        let postmaster = std::fs::read_to_string(node.data.join("postmaster.pid"))
            .ok()
            .and_then(|pid| pid.lines().next().map(str::to_owned));
        if let Some(mut patroni) = self.patronis()[n].take() {
            patroni.kill()?;
            patroni.wait()?;
        }
        if let Some(pid) = postmaster {
            Command::new("sh")
                .args(["-c", &format!("kill -STOP {pid}; pkill -9 -P {pid}; kill -9 {pid}")])
                .status()?;
        }
        Ok(())
    }

    /// Starts node `n`'s Patroni again: it rejoins as a standby (rewinding
    /// its data directory if it had diverged).
    pub fn restart(&self, n: usize) -> Result<(), ClusterError> {
        self.start_node(n)
    }

    /// A clean switchover through Patroni from the primary, node `from`,
    /// to the synchronous standby (in synchronous mode Patroni promotes no
    /// other); returns the new primary.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Command`] when Patroni refuses or there is no
    /// standby to switch to.
    pub fn switchover(&self, from: usize) -> Result<usize, ClusterError> {
        let members = self.members()?;
        let wanted = if self.options.synchronous {
            "Sync Standby"
        } else {
            "Replica"
        };
        let to = members
            .iter()
            .find(|m| m.role == wanted && m.state == "running")
            .and_then(|m| self.nodes.iter().position(|n| n.name == m.name))
            .ok_or_else(|| ClusterError::Command {
                command: "patronictl list (looking for a standby to switch over to)".into(),
                output: format!("{members:?}"),
            })?;
        let output = self
            .patronictl()
            .args([
                "switchover",
                "--leader",
                &self.nodes[from].name,
                "--candidate",
                &self.nodes[to].name,
                "--force",
            ])
            .output()?;
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() || printed.to_lowercase().contains("failed") {
            return Err(ClusterError::Command {
                command: "patronictl switchover".into(),
                output: printed,
            });
        }
        Ok(to)
    }

    /// Waits until every node runs, one is the leader and (in synchronous
    /// mode) one is the synchronous standby, as `patronictl list` shows.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Command`] with the last listing and the end of each
    /// node's log when `timeout` passes first.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), ClusterError> {
        let started = Instant::now();
        loop {
            let members = self.members().unwrap_or_default();
            let running = members
                .iter()
                .filter(|m| m.state == "running" || m.state == "streaming")
                .count();
            let leader = members.iter().any(|m| m.role == "Leader");
            let sync = !self.options.synchronous || members.iter().any(|m| m.role == "Sync Standby");
            if running == NODES && leader && sync {
                return Ok(());
            }
            if started.elapsed() > timeout {
                let mut output = format!("{members:?}");
                for node in &self.nodes {
                    let log = std::fs::read_to_string(self.dir.join(format!("{}.log", node.name))).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(15).collect();
                    output.push_str(&format!("\n{}.log, last lines:\n", node.name));
                    for line in tail.into_iter().rev() {
                        output.push_str(line);
                        output.push('\n');
                    }
                }
                return Err(ClusterError::Command {
                    command: "patronictl list (waiting for a healthy cluster)".into(),
                    output,
                });
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The members as `patronictl list` shows them.
    fn members(&self) -> Result<Vec<Member>, ClusterError> {
        let output = self.patronictl().arg("list").stderr(Stdio::null()).output()?;
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                match cells.as_slice() {
                    ["", name, _host, role, state, ..] if name.starts_with("node") => Some(Member {
                        name: (*name).to_owned(),
                        role: (*role).to_owned(),
                        state: (*state).to_owned(),
                    }),
                    _ => None,
                }
            })
            .collect())
    }

    fn patronictl(&self) -> Command {
        let mut command = Command::new("patronictl");
        command.arg("-c").arg(&self.nodes[0].config).stdin(Stdio::null());
        command
    }

    /// Waits until a node other than `old` is the primary, and returns it.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Command`] when none is within `timeout`.
    pub async fn wait_for_new_primary(&self, old: usize, timeout: Duration) -> Result<usize, ClusterError> {
        let started = Instant::now();
        loop {
            if let Some(primary) = self.primary().await
                && primary != old
            {
                return Ok(primary);
            }
            if started.elapsed() > timeout {
                return Err(ClusterError::Command {
                    command: format!("waiting for a primary other than node {}", old + 1),
                    output: format!("none within {timeout:?}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Patroni's leader key time-to-live: how long a killed primary keeps
    /// its leadership before a standby takes over.
    pub fn leader_ttl(&self) -> Duration {
        Duration::from_secs(TTL)
    }

    /// The cluster's directory (logs: `etcd.log`, `node<N>.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn start_node(&self, n: usize) -> Result<(), ClusterError> {
        let node = &self.nodes[n];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", node.name)))?;
        let mut command = as_user(&self.patroni, self.as_postgres);
        command
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = command.spawn()?;
        if let Some(mut old) = self.patronis()[n].replace(child) {
            // A Patroni that exited by itself; reap it.
            let _ = old.kill();
            let _ = old.wait();
        }
        Ok(())
    }

    fn patronis(&self) -> std::sync::MutexGuard<'_, Vec<Option<Child>>> {
        self.patronis.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A `pkill -f` pattern for every process whose command line names
/// something in `dir`, which does not match the shell running it.
fn processes_in(dir: &Path) -> Result<String, ClusterError> {
    let dir = path(dir)?;
    let mut chars = dir.chars();
    let first = chars.next().unwrap_or('/');
    Ok(format!("[{first}]{}/", chars.as_str()))
}

impl Drop for HaCluster {
    /// Kills every process and removes the directory; with
    /// `FACTOS_KEEP_HA_LOGS` set, keeps the directory (its logs) for a look.
    fn drop(&mut self) {
        for patroni in self.patronis().iter_mut().flatten() {
            let _ = patroni.kill();
            let _ = patroni.wait();
        }
        let (Ok(pattern), Ok(dir)) = (processes_in(&self.dir), path(&self.dir)) else {
            return;
        };
        let _ = Command::new("pkill").args(["-9", "-f", &pattern]).status();
        if std::env::var_os("FACTOS_KEEP_HA_LOGS").is_some() {
            eprintln!("HA cluster logs kept in {dir}");
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[allow(clippy::too_many_arguments)]
fn patroni_config(
    name: &str,
    dir: &Path,
    bin: &Path,
    data: &Path,
    pg_port: u16,
    api_port: u16,
    etcd_port: u16,
    options: HaOptions,
) -> Result<String, ClusterError> {
    let (dir, bin, data) = (path(dir)?, path(bin)?, path(data)?);
    let flush = if options.fsync { "on" } else { "off" };
    Ok(format!(
        "scope: factos
name: {name}
log:
  level: WARNING
restapi:
  listen: 127.0.0.1:{api_port}
  connect_address: 127.0.0.1:{api_port}
etcd3:
  hosts: 127.0.0.1:{etcd_port}
bootstrap:
  dcs:
    ttl: {TTL}
    loop_wait: 1
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    synchronous_mode: {synchronous}
    postgresql:
      use_pg_rewind: true
      remove_data_directory_on_rewind_failure: true
      remove_data_directory_on_diverged_timelines: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: 'on'
        wal_log_hints: 'on'
        max_wal_senders: 10
        max_replication_slots: 10
        max_connections: 200
        max_locks_per_transaction: 256
        shared_buffers: 32MB
        fsync: '{flush}'
        full_page_writes: '{flush}'
  initdb:
    - encoding: UTF8
    - no-locale
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:{pg_port}
  connect_address: 127.0.0.1:{pg_port}
  data_dir: {data}
  bin_dir: {bin}
  pgpass: {dir}/{name}.pgpass
  authentication:
    replication:
      username: replicator
      password: replicator
    superuser:
      username: postgres
      password: postgres
  parameters:
    unix_socket_directories: {dir}
",
        synchronous = options.synchronous,
    ))
}

/// How long writers went unanswered around an outage that began at `from`:
/// the longest gap between two of the `acknowledged` times from half a
/// second before it (a write committed just before a kill can be
/// acknowledged just after it) up to `until`; `None` with fewer than two.
pub fn longest_silence(acknowledged: &[Instant], from: Instant, until: Instant) -> Option<Duration> {
    let mut around: Vec<Instant> = acknowledged
        .iter()
        .copied()
        .filter(|at| *at + Duration::from_millis(500) > from && *at < until)
        .collect();
    around.sort();
    around.windows(2).map(|pair| pair[1] - pair[0]).max()
}

/// `N` loopback ports that were free a moment ago.
fn free_ports<const N: usize>() -> Result<[u16; N], ClusterError> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

fn chown_tree(dir: &Path) -> Result<(), ClusterError> {
    let (uid, gid) = (id("-u")?, id("-g")?);
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name() != "etcd" {
            std::os::unix::fs::chown(entry.path(), Some(uid), Some(gid))?;
        }
    }
    Ok(())
}
