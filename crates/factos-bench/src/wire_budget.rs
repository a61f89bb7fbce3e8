//! The most round trips and statements each operation may take: the
//! regression guard of the round-trip section. Counts are exact (one
//! connection, one operation at a time), so any growth is a change in what
//! the store sends, found by `--quick` in CI before anyone times it. When a
//! change lowers a count, lower its budget here in the same commit.

/// `(operation, statements, round trips, statements run, statements parsed)`:
/// the ceilings, per operation, in the section's terms.
pub const BUDGET: &[(&str, &str, f64, f64, f64)] = &[
    ("append, 1 event", "prepared", 1.0, 1.0, 0.0),
    ("append, 100 events", "prepared", 1.0, 1.0, 0.0),
    ("conditional append, 1 event", "prepared", 1.0, 1.0, 0.0),
    ("read of a context", "prepared", 1.0, 5.0, 4.0),
    ("dispatch_context (decision)", "prepared", 2.0, 8.0, 5.0),
    ("append, 1 event", "unnamed", 1.0, 1.0, 1.0),
    ("append, 100 events", "unnamed", 1.0, 1.0, 1.0),
    ("conditional append, 1 event", "unnamed", 1.0, 1.0, 1.0),
    ("read of a context", "unnamed", 1.0, 5.0, 5.0),
    ("dispatch_context (decision)", "unnamed", 2.0, 8.0, 8.0),
    ("raw baseline append, 1 event", "prepared", 1.0, 1.0, 0.0),
];

/// Where `measured` (`[round trips, statements run, statements parsed]`
/// of `operation` with `statements`) exceeds its budget, or has none: what
/// is wrong, in words.
pub fn over_budget(operation: &str, statements: &str, measured: [f64; 3]) -> Option<String> {
    let Some(&(_, _, trips, run, parsed)) = BUDGET.iter().find(|(o, s, ..)| *o == operation && *s == statements) else {
        return Some(format!("{operation} ({statements}) has no budget in wire_budget.rs"));
    };
    // Averages of whole counts: anything above the ceiling by more than
    // rounding is a statement or a round trip more, at least sometimes.
    let over = measured
        .iter()
        .zip([trips, run, parsed])
        .zip(["round trips", "statements run", "statements parsed"])
        .filter(|((got, ceiling), _)| **got > *ceiling + 1e-9)
        .map(|((got, ceiling), what)| format!("{what} {got:.2} > {ceiling:.2}"))
        .collect::<Vec<_>>();
    (!over.is_empty()).then(|| format!("{operation} ({statements}): {}", over.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_at_the_budget_pass_and_any_growth_or_unknown_operation_fails() {
        assert_eq!(over_budget("read of a context", "prepared", [1.0, 5.0, 4.0]), None);
        assert_eq!(over_budget("read of a context", "prepared", [1.0, 2.0, 0.0]), None);
        let grown = over_budget("read of a context", "prepared", [1.0, 5.01, 4.0]);
        assert!(grown.is_some_and(|why| why.contains("statements run 5.01 > 5.00")));
        assert!(over_budget("read of a context", "prepared", [2.0, 5.0, 4.0]).is_some());
        assert!(over_budget("something new", "prepared", [0.0, 0.0, 0.0]).is_some());
    }
}
