//! Logging for the examples: `tracing` output as `RUST_LOG` asks.

/// Logs to stderr as `RUST_LOG` says (nothing below warnings without it):
/// `RUST_LOG=factos=info` prints one line per dispatch when it ends, with
/// its attempts, conflicts, events read and appended, outcome and time;
/// `RUST_LOG=factos=debug` adds every store call and every retry.
///
/// `RUST_LOG` holds targets and levels (`factos=debug,warn`), read with
/// `tracing-subscriber`'s `Targets` filter, which needs no regular
/// expressions (its `EnvFilter` would add a regex engine to the examples'
/// first build).
pub fn init_tracing() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::fmt::format::FmtSpan;
    use tracing_subscriber::prelude::*;
    let filter: Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::WARN));
    tracing_subscriber::fmt()
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .finish()
        .with(filter)
        .init();
}
