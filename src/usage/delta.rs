//! [`Delta`]: what one change adds to a tenant+env's counters.
use super::{counters, slot};
use crate::values::media::Kind;

macro_rules! zero {
    (; stock: $($s:ident $sc:ident),*; activity: $($a:ident $ac:ident),*) => {
        Delta {
            kind_bytes: [0; 8],
            $($s: 0,)*
            $($a: 0,)*
        }
    };
}

/// What one change adds to a tenant+env's counters (negative for what it removes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta {
    pub objects: i64,
    pub logical_bytes: i64,
    pub physical_bytes: i64,
    /// Bytes per kind, in [`KINDS`](super::KINDS) order.
    pub kind_bytes: [i64; 8],
    pub uploads: i64,
    pub upload_bytes: i64,
    /// Download URLs handed out, and their items' bytes.
    pub download_urls: i64,
    pub download_url_bytes: i64,
    /// Downloads served (Cairn's and CloudFront's), and the bytes sent.
    pub downloads: i64,
    pub download_bytes: i64,
    pub dedup_hits: i64,
    pub dedup_bytes_saved: i64,
    pub purges: i64,
    pub reclaimed_bytes: i64,
    pub cdn_requests: i64,
    pub cdn_bytes: i64,
}

impl Delta {
    pub const ZERO: Delta = counters!(zero!());

    /// An item of `size` bytes became live (`kind` `None`: a raw asset).
    pub fn live(kind: Option<Kind>, size: i64) -> Self {
        let mut d = Self {
            objects: 1,
            logical_bytes: size,
            ..Self::default()
        };
        d.kind_bytes[slot(kind)] = size;
        d
    }

    /// The opposite change (a live item that stops being live: `live(..).negated()`).
    pub fn negated(self) -> Self {
        macro_rules! negated {
            ($d:ident; stock: $($s:ident $sc:ident),*; activity: $($a:ident $ac:ident),*) => {
                Self {
                    kind_bytes: $d.kind_bytes.map(|b| -b),
                    $($s: -$d.$s,)*
                    $($a: -$d.$a,)*
                }
            };
        }
        counters!(negated!(self))
    }

    /// The client's bytes were accepted (`uploads`), on a new blob unless they matched stored
    /// content (`dedup`: the copy is dropped and the stored blob gains a reference).
    pub fn uploaded(self, size: i64, dedup: bool) -> Self {
        let s = Self {
            uploads: self.uploads + 1,
            upload_bytes: self.upload_bytes + size,
            ..self
        };
        if dedup {
            s.dedup(size)
        } else {
            s.stored(size)
        }
    }

    /// Content already stored served a new item: nothing more is kept.
    pub fn dedup(self, size: i64) -> Self {
        Self {
            dedup_hits: self.dedup_hits + 1,
            dedup_bytes_saved: self.dedup_bytes_saved + size,
            ..self
        }
    }

    /// A blob of `size` bytes became `stored`.
    pub fn stored(self, size: i64) -> Self {
        Self {
            physical_bytes: self.physical_bytes + size,
            ..self
        }
    }

    /// Download URLs handed out for `count` items of `bytes` in all.
    pub fn urls_issued(count: i64, bytes: i64) -> Self {
        Self {
            download_urls: count,
            download_url_bytes: bytes,
            ..Self::default()
        }
    }

    /// `requests` downloads Cairn served itself, `bytes` sent in all.
    pub fn served(requests: i64, bytes: i64) -> Self {
        Self {
            downloads: requests,
            download_bytes: bytes,
            ..Self::default()
        }
    }

    /// `requests` downloads CloudFront served (its logs), `bytes` sent: served like Cairn's, and
    /// CloudFront's part on its own.
    pub fn cdn_served(requests: i64, bytes: i64) -> Self {
        Self {
            cdn_requests: requests,
            cdn_bytes: bytes,
            ..Self::served(requests, bytes)
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    pub fn add(&mut self, o: &Delta) {
        macro_rules! add {
            ($d:ident, $o:ident; stock: $($s:ident $sc:ident),*; activity: $($a:ident $ac:ident),*) => {
                $($d.$s += $o.$s;)*
                $($d.$a += $o.$a;)*
            };
        }
        counters!(add!(self, o));
        for (a, b) in self.kind_bytes.iter_mut().zip(o.kind_bytes) {
            *a += b;
        }
    }

    /// The activity part, which `usage_daily` keeps per day.
    pub(super) fn has_activity(&self) -> bool {
        macro_rules! any_activity {
            ($d:ident; stock: $($s:ident $sc:ident),*; activity: $($a:ident $ac:ident),*) => {
                false $(|| $d.$a != 0)*
            };
        }
        counters!(any_activity!(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_counts_once_and_dedup_keeps_physical_bytes() {
        let fresh = Delta::live(Some(Kind::Image), 10).uploaded(10, false);
        assert_eq!(
            (fresh.objects, fresh.logical_bytes, fresh.physical_bytes),
            (1, 10, 10)
        );
        assert_eq!(
            (fresh.uploads, fresh.upload_bytes, fresh.dedup_hits),
            (1, 10, 0)
        );
        let dup = Delta::live(Some(Kind::Image), 10).uploaded(10, true);
        assert_eq!(
            (dup.physical_bytes, dup.dedup_hits, dup.dedup_bytes_saved),
            (0, 1, 10)
        );
        assert!(Delta::default().is_zero());
        assert_eq!(Delta::live(None, 5).negated().objects, -1);
        assert_eq!(Delta::live(None, 5).negated().kind_bytes[7], -5);
        assert!(!Delta::urls_issued(1, 0).is_zero());
        let cdn = Delta::cdn_served(2, 300);
        assert_eq!(
            (
                cdn.downloads,
                cdn.download_bytes,
                cdn.cdn_requests,
                cdn.cdn_bytes
            ),
            (2, 300, 2, 300),
            "CloudFront's requests are downloads served, and its part of them"
        );
        assert_eq!(cdn.download_urls, 0);
    }

    #[test]
    fn zero_negation_and_sums_cover_every_counter() {
        assert_eq!(Delta::ZERO, Delta::default());
        let mut d = Delta::live(Some(Kind::Audio), 7).uploaded(7, true);
        d.add(&Delta::cdn_served(1, 2));
        d.add(&Delta::urls_issued(3, 4));
        d.purges = 5;
        d.reclaimed_bytes = 6;
        assert!(d.has_activity());
        let mut sum = d;
        sum.add(&d.negated());
        assert!(sum.is_zero(), "{sum:?}");
        assert!(!Delta::live(None, 1).has_activity());
    }
}
