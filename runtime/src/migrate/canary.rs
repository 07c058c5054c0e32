//! Which side serves a request of a canary route, and the rollback rule, shared by all
//! workers.
//!
//! Owns: `Split`: the choice (a sticky client's cookie or header value hashed to one of
//! 10,000 buckets, the canary taking the lowest `percent`% of them, so a client stays on its
//! side while `percent` is unchanged; no sticky value: random), and the rollback: the last
//! `rollback_window` outcomes of each side are kept in rings of one byte per request (1 for a
//! 5xx), with running counts, in an anonymous `MAP_SHARED` mapping made when the route is
//! built — in the master, before it forks — so every worker (and a recycled replacement)
//! records into, and decides from, the same window and the same rolled-back flag. A reload
//! builds the routes again and so starts a fresh window with the flag down: a rollback
//! "stays until reload". Shared memory rather than the SQLite store: the decision is on the
//! request path and must cost a few atomics, not a query. Must not touch: running handlers,
//! logging or storing the rollback (the caller does, once, when `record` says it rolled back).

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};

use http::HeaderMap;

use crate::config::{CanaryConfig, Sticky};

/// The side that serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Primary,
    Canary,
}

#[repr(C)]
struct Head {
    rolled_back: AtomicU32,
    /// Per side (primary, canary): outcomes recorded, and 5xx in the ring now.
    seen: [AtomicU64; 2],
    bad: [AtomicI64; 2],
}

/// A canary route's split and its shared rollback window.
pub struct Split {
    percent: f64,
    sticky: Option<Sticky>,
    rule: Option<f64>,
    window: usize,
    map: *mut u8,
    len: usize,
}

// SAFETY: the mapping is only ever accessed through atomics.
unsafe impl Send for Split {}
// SAFETY: as above.
unsafe impl Sync for Split {}

impl Drop for Split {
    fn drop(&mut self) {
        // SAFETY: `map`/`len` are the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.map.cast(), self.len) };
    }
}

impl Split {
    /// Maps the shared window (call before the workers fork).
    pub fn new(config: &CanaryConfig) -> Result<Split, String> {
        let window = config.rollback_window.max(1);
        let len = std::mem::size_of::<Head>() + 2 * window;
        // SAFETY: a fresh anonymous shared mapping; zero-filled, which is a valid `Head`
        // (all atomics at 0) and valid rings.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(format!(
                "canary window: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(Split {
            percent: config.percent,
            sticky: config.sticky.clone(),
            rule: config.rollback_5xx_rate,
            window,
            map: map.cast(),
            len,
        })
    }

    fn head(&self) -> &Head {
        // SAFETY: the mapping starts with a `Head` and lives as long as `self`.
        unsafe { &*(self.map as *const Head) }
    }

    fn ring(&self, side: Side) -> &[AtomicU8] {
        let offset = std::mem::size_of::<Head>() + side as usize * self.window;
        // SAFETY: two rings of `window` bytes follow the head, inside the mapping.
        unsafe { std::slice::from_raw_parts(self.map.add(offset) as *const AtomicU8, self.window) }
    }

    /// Whether the canary has been rolled back (by any worker).
    pub fn rolled_back(&self) -> bool {
        self.head().rolled_back.load(Ordering::Relaxed) != 0
    }

    /// The side for a request with these headers.
    pub fn choose(&self, headers: &HeaderMap) -> Side {
        if self.rolled_back() || self.percent <= 0.0 {
            return Side::Primary;
        }
        let bucket = match self.sticky.as_ref().and_then(|s| sticky_value(s, headers)) {
            Some(value) => fnv1a(value) % 10_000,
            None => fastrand::u64(0..10_000),
        };
        if (bucket as f64) < self.percent * 100.0 {
            Side::Canary
        } else {
            Side::Primary
        }
    }

    /// Records one response of `side`; returns the reason when this call rolled the canary
    /// back (exactly one call across all workers does).
    pub fn record(&self, side: Side, status: u16) -> Option<String> {
        let rate = self.rule?;
        let head = self.head();
        let i = side as usize;
        let n = head.seen[i].fetch_add(1, Ordering::AcqRel);
        let new = u8::from(status >= 500);
        let old = self.ring(side)[(n % self.window as u64) as usize].swap(new, Ordering::AcqRel);
        head.bad[i].fetch_add(i64::from(new) - i64::from(old), Ordering::AcqRel);
        if side != Side::Canary || n + 1 < self.window as u64 || self.rolled_back() {
            return None;
        }
        let canary = head.bad[1].load(Ordering::Acquire).max(0) as f64 / self.window as f64;
        let primary_seen = head.seen[0].load(Ordering::Acquire).min(self.window as u64);
        let primary = match primary_seen {
            0 => 0.0,
            n => head.bad[0].load(Ordering::Acquire).max(0) as f64 / n as f64,
        };
        if canary <= primary + rate {
            return None;
        }
        let won = head
            .rolled_back
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        won.then(|| {
            format!(
                "canary 5xx rate {:.1}% over the last {} requests exceeds the primary's {:.1}% by more than {:.1} points",
                canary * 100.0,
                self.window,
                primary * 100.0,
                rate * 100.0
            )
        })
    }
}

/// The sticky value of a request, if it carries one.
fn sticky_value<'h>(sticky: &Sticky, headers: &'h HeaderMap) -> Option<&'h [u8]> {
    match sticky {
        Sticky::Header(name) => headers
            .get(name.as_str())
            .map(|v| v.as_bytes())
            .filter(|v| !v.is_empty()),
        Sticky::Cookie(name) => headers.get_all(http::header::COOKIE).iter().find_map(|v| {
            v.as_bytes().split(|&b| b == b';').find_map(|pair| {
                let pair = pair.trim_ascii();
                let eq = pair.iter().position(|&b| b == b'=')?;
                (pair[..eq].trim_ascii() == name.as_bytes())
                    .then(|| pair[eq + 1..].trim_ascii())
                    .filter(|v| !v.is_empty())
            })
        }),
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteTarget;

    fn split(percent: f64, rule: Option<f64>, window: usize) -> Split {
        Split::new(&CanaryConfig {
            target: RouteTarget::Wasm {
                file: "x.wasm".into(),
            },
            percent,
            sticky: Some(Sticky::Cookie("session".into())),
            rollback_5xx_rate: rule,
            rollback_window: window,
        })
        .expect("a mapping")
    }

    #[test]
    fn a_sticky_client_keeps_its_side() {
        let s = split(50.0, None, 10);
        for i in 0..50 {
            let mut h = HeaderMap::new();
            let cookie = format!("a=1; session=user{i}");
            h.insert("cookie", cookie.parse().expect("v"));
            let first = s.choose(&h);
            assert!((0..20).all(|_| s.choose(&h) == first));
        }
    }

    #[test]
    fn a_failing_canary_is_rolled_back_once() {
        let s = split(100.0, Some(0.1), 10);
        for _ in 0..10 {
            s.record(Side::Primary, 200);
        }
        let rolled: Vec<_> = (0..20)
            .filter_map(|_| s.record(Side::Canary, 500))
            .collect();
        assert_eq!(rolled.len(), 1);
        assert!(s.rolled_back());
        assert_eq!(s.choose(&HeaderMap::new()), Side::Primary);
    }

    #[test]
    fn a_canary_as_good_as_the_primary_stays() {
        let s = split(100.0, Some(0.1), 10);
        for i in 0..100 {
            s.record(Side::Primary, if i % 10 == 0 { 500 } else { 200 });
            assert_eq!(
                s.record(Side::Canary, if i % 10 == 0 { 500 } else { 200 }),
                None
            );
        }
        assert!(!s.rolled_back());
    }
}
