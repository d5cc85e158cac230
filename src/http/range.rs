//! The one `Range` form Cairn serves: a single byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`).
//! Multi-range requests are answered with the whole object, as RFC 9110 allows.

#[derive(Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    Full,
    /// Inclusive start and end.
    Partial(u64, u64),
    Unsatisfiable,
}

pub fn parse(header: Option<&str>, size: u64) -> RangeOutcome {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeOutcome::Full;
    };
    if spec.contains(',') {
        return RangeOutcome::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeOutcome::Full;
    };
    let num = |s: &str| s.trim().parse::<u64>().ok();
    match (a.trim().is_empty(), num(a), num(b)) {
        // bytes=-n: the last n bytes.
        (true, _, Some(n)) if n > 0 && size > 0 => {
            RangeOutcome::Partial(size.saturating_sub(n), size - 1)
        }
        (true, _, _) => RangeOutcome::Unsatisfiable,
        (false, Some(start), _) if start >= size => RangeOutcome::Unsatisfiable,
        (false, Some(start), None) if b.trim().is_empty() => RangeOutcome::Partial(start, size - 1),
        (false, Some(start), Some(end)) if end >= start => {
            RangeOutcome::Partial(start, end.min(size - 1))
        }
        _ => RangeOutcome::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeOutcome::*;

    #[test]
    fn forms() {
        assert_eq!(parse(None, 10), Full);
        assert_eq!(parse(Some("bytes=0-3"), 10), Partial(0, 3));
        assert_eq!(parse(Some("bytes=4-"), 10), Partial(4, 9));
        assert_eq!(parse(Some("bytes=-3"), 10), Partial(7, 9));
        assert_eq!(parse(Some("bytes=-30"), 10), Partial(0, 9));
        assert_eq!(parse(Some("bytes=5-100"), 10), Partial(5, 9));
        assert_eq!(parse(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-0"), 0), Unsatisfiable);
        assert_eq!(parse(Some("bytes=3-1"), 10), Full);
        assert_eq!(parse(Some("bytes=0-1,3-4"), 10), Full);
        assert_eq!(parse(Some("items=0-1"), 10), Full);
    }
}
