//! Worker recycling, the worker's side: when this worker wants to be replaced.
//!
//! Owns: the worker's request count against its `max_requests` limit (`max_requests` plus a
//! random `0..=max_requests_jitter`, drawn once per worker, gunicorn's meaning), the
//! once-a-second check of its resident set size against `max_rss` (`/proc/self/statm`), the
//! log line saying why, and asking the master (`MasterLink::recycle_me`), again every second
//! until the master stops it. Must not touch: how the master replaces a worker (see
//! `supervisor::recycle`: the replacement first, then this worker drains like on `SIGTERM`) or
//! connections: a worker that asked goes on serving normally until then.
//!
//! Cost on the request path: one `Cell` increment and compare per response (`request_done`).

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use std::time::Duration;

use super::supervisor::MasterLink;
use crate::config::ServerConfig;

/// How often the resident set size is read, and a pending request repeated.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// One worker's recycling state.
pub struct Recycle {
    index: usize,
    link: MasterLink,
    /// Requests after which this worker asks to be replaced (`None`: never).
    limit: Option<u64>,
    max_rss: u64,
    served: Cell<u64>,
    /// Set once this worker has asked.
    asked: Cell<bool>,
}

impl Recycle {
    /// The recycling state of worker `index` under `server`'s settings; logs its limits.
    pub fn new(server: &ServerConfig, index: usize, link: MasterLink) -> Recycle {
        let limit = (server.max_requests > 0).then(|| {
            let jitter = match server.max_requests_jitter {
                0 => 0,
                j => random_u64() % (j.saturating_add(1)).max(1),
            };
            server.max_requests.saturating_add(jitter)
        });
        let pid = std::process::id();
        if let Some(limit) = limit {
            tracing::info!(
                "worker {index} (pid {pid}) will be recycled after {limit} requests \
                 (max_requests {} + jitter up to {})",
                server.max_requests,
                server.max_requests_jitter
            );
        }
        Recycle {
            index,
            link,
            limit,
            max_rss: server.max_rss,
            served: Cell::new(0),
            asked: Cell::new(false),
        }
    }

    /// Counts one response sent (or abandoned by its client).
    pub fn request_done(&self) {
        let served = self.served.get() + 1;
        self.served.set(served);
        if Some(served) == self.limit {
            tracing::info!(
                "worker {} (pid {}) recycled after {served} requests",
                self.index,
                std::process::id()
            );
            self.ask();
        }
    }

    /// Runs for the worker's life: checks `max_rss`, and repeats a pending request to the
    /// master (a request the master could not act on, a fork failure for instance).
    pub async fn watch(self: Rc<Self>) {
        if self.limit.is_none() && self.max_rss == 0 {
            return;
        }
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.asked.get() {
                self.link.recycle_me();
                continue;
            }
            if self.max_rss == 0 {
                continue;
            }
            let Some(rss) = resident_set_size() else {
                continue;
            };
            if rss > self.max_rss {
                tracing::info!(
                    "worker {} (pid {}) recycled: RSS {} MiB over max_rss {} MiB",
                    self.index,
                    std::process::id(),
                    rss >> 20,
                    self.max_rss >> 20
                );
                self.ask();
            }
        }
    }

    fn ask(&self) {
        if !self.asked.replace(true) {
            self.link.recycle_me();
        }
    }
}

/// This process's resident set size in bytes (`/proc/self/statm`, second field, in pages).
fn resident_set_size() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages.saturating_mul(u64::try_from(page).ok()?))
}

/// A random number: the standard library seeds every `RandomState` from the OS.
fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_set_size_is_read() {
        let rss = resident_set_size().unwrap_or(0);
        assert!(rss > 1024 * 1024, "{rss}");
    }
}
