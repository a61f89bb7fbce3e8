//! Runnable examples for factos; see the `examples` targets.
