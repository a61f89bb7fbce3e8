//! Building the test worker and serving it under miniflare, once per test
//! process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Why the worker cannot run on this machine: the D1 tests skip, saying so.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the D1 tests need {0}")]
pub struct Unavailable(pub String);

/// How many D1 databases (bindings `DB0` …) the worker has: one per store
/// a test process makes.
const DATABASES: u32 = 512;

/// The running worker.
#[derive(Debug)]
pub struct D1Worker {
    url: String,
    next_db: AtomicU32,
    /// Ends with the process: miniflare exits when its stdin closes.
    _miniflare: Child,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `program` if it runs (`--version`), else why not.
fn found(program: &Path, what: &str) -> Result<(), Unavailable> {
    match Command::new(program).arg("--version").output() {
        Ok(output) if output.status.success() => Ok(()),
        _ => Err(Unavailable(format!("{what} ({} did not run)", program.display()))),
    }
}

fn tool(env: &str, name: &str) -> PathBuf {
    std::env::var_os(env).map_or_else(|| PathBuf::from(name), PathBuf::from)
}

fn start() -> Result<D1Worker, Unavailable> {
    let root = workspace();
    let js = root.join("crates/factos-test-d1/js");
    let crate_dir = root.join("crates/factos-d1-test-worker");
    found(Path::new("node"), "Node.js")?;
    if !js.join("node_modules/miniflare").is_dir() {
        return Err(Unavailable(format!("miniflare: run `npm ci` in {}", js.display())));
    }
    let wasm_bindgen = tool("WASM_BINDGEN_BIN", "wasm-bindgen");
    found(
        &wasm_bindgen,
        "wasm-bindgen-cli at the version Cargo.lock pins (`cargo install wasm-bindgen-cli --version …`)",
    )?;
    found(Path::new("worker-build"), "worker-build (`cargo install worker-build`)")?;
    let esbuild = js.join("node_modules/.bin/esbuild");
    let build = Command::new("worker-build")
        // wasm-opt would be downloaded from GitHub, which CI cannot reach;
        // an unoptimised module only runs a little slower.
        .args(["--release", "--no-opt"])
        .current_dir(&crate_dir)
        .env("WASM_BINDGEN_BIN", &wasm_bindgen)
        .env("ESBUILD_BIN", &esbuild)
        .env("CARGO_TARGET_DIR", root.join("target/d1-worker"))
        .output()
        .map_err(|e| Unavailable(format!("worker-build to run: {e}")))?;
    if !build.status.success() {
        // A toolchain that is there but fails is a failure, not a skip.
        panic!(
            "worker-build failed:\n{}\n{}",
            String::from_utf8_lossy(&build.stdout),
            String::from_utf8_lossy(&build.stderr)
        );
    }
    let mut miniflare = Command::new("node")
        .arg(js.join("harness.mjs"))
        .arg(crate_dir.join("build"))
        .arg(DATABASES.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Unavailable(format!("node to start miniflare: {e}")))?;
    let stdout = miniflare
        .stdout
        .take()
        .ok_or_else(|| Unavailable("miniflare's output".into()))?;
    let mut url = String::new();
    BufReader::new(stdout)
        .read_line(&mut url)
        .map_err(|e| Unavailable(format!("miniflare's URL: {e}")))?;
    let url = url.trim().trim_end_matches('/').to_owned();
    if url.is_empty() {
        panic!("miniflare exited without serving the worker (its errors are above)");
    }
    Ok(D1Worker {
        url,
        next_db: AtomicU32::new(0),
        _miniflare: miniflare,
    })
}

impl D1Worker {
    /// The worker of this test process, built and started on first use
    /// (a minute or two the first time: the worker is compiled to wasm).
    ///
    /// # Errors
    ///
    /// [`Unavailable`] when the toolchain is missing.
    ///
    /// # Panics
    ///
    /// When the toolchain is there but the build or miniflare fails, or
    /// when it is missing and `FACTOS_REQUIRE_D1` is set (as in CI).
    pub fn shared() -> Result<&'static D1Worker, Unavailable> {
        static WORKER: OnceLock<Result<D1Worker, Unavailable>> = OnceLock::new();
        let worker = WORKER.get_or_init(start).as_ref().map_err(Clone::clone);
        // CI installs the toolchain; there a missing piece is a failure.
        if let Err(why) = &worker
            && std::env::var_os("FACTOS_REQUIRE_D1").is_some()
        {
            panic!("FACTOS_REQUIRE_D1 is set, but {why}");
        }
        worker
    }

    /// The worker's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A D1 database no store of this process used yet.
    ///
    /// # Panics
    ///
    /// When the process used all of them.
    pub fn fresh_database(&self) -> u32 {
        let db = self.next_db.fetch_add(1, Ordering::Relaxed);
        assert!(
            db < DATABASES,
            "this test process used all {DATABASES} D1 databases of the worker"
        );
        db
    }
}
