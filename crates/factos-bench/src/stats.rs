//! Medians and percentiles of measured samples.

use std::time::Duration;

/// The median of `values` (0 when empty).
pub fn median(values: &[f64]) -> f64 {
    percentile_of(values, 50.0)
}

/// The `p`-th percentile (nearest rank) of `values` (0 when empty).
pub fn percentile_of(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Latencies in microseconds.
pub fn micros(durations: &[Duration]) -> Vec<f64> {
    durations.iter().map(|d| d.as_secs_f64() * 1e6).collect()
}

/// The CPU time this process has used, user and system, from a starting
/// point.
#[derive(Debug, Clone, Copy)]
pub struct CpuTime(f64);

impl CpuTime {
    /// The process's CPU time so far.
    pub fn now() -> Self {
        Self(process_cpu_micros())
    }

    /// Microseconds of CPU time used since [`CpuTime::now`].
    pub fn elapsed_micros(self) -> f64 {
        process_cpu_micros() - self.0
    }
}

/// User plus system CPU time of the whole process (every thread), from
/// `/proc/self/stat`, in microseconds; in clock ticks of 10 ms (Linux's
/// `USER_HZ` is 100), fine for runs of seconds. 0 where it cannot be read.
fn process_cpu_micros() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces), which ends
    // with the last ')': utime and stime are fields 14 and 15 of the line.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) * 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(median(&values), 50.0);
        assert_eq!(percentile_of(&values, 99.0), 99.0);
        assert_eq!(percentile_of(&[3.0, 1.0, 2.0], 50.0), 2.0);
        assert_eq!(median(&[]), 0.0);
    }
}
