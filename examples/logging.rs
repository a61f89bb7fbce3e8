//! Logging for the examples: `tracing` output as `RUST_LOG` asks.

/// Logs to stderr as `RUST_LOG` says (nothing below warnings without it):
/// `RUST_LOG=factos=info` prints one line per dispatch when it ends, with
/// its attempts, conflicts, events read and appended, outcome and time;
/// `RUST_LOG=factos=debug` adds every store call and every retry.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::format::FmtSpan;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
