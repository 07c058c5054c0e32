//! The process table in the shared segment: one entry per running worker process (a few per
//! worker index, for a worker and its replacements while they run side by side).
//!
//! Owns: a worker claiming its entry at boot (pid, index, start time; its requests served and
//! in-flight count start at 0), and reading the live entries back (an entry whose process has
//! exited, or is no longer the master's child, is skipped: a worker killed with `SIGKILL`
//! takes its in-flight count with it). RSS is read from `/proc/PID/statm` when asked.
//! Must not touch: per-route counters (`counter`), or starting and stopping processes.

use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};

/// One worker process.
#[repr(C, align(64))]
pub struct ProcSlot {
    pub pid: AtomicI32,
    pub index: AtomicU32,
    /// Unix time in milliseconds.
    pub started_ms: AtomicU64,
    pub requests: AtomicU64,
    pub in_flight: AtomicI64,
}

/// A live worker, as `/status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcView {
    pub pid: i32,
    pub index: u32,
    pub started_unix_ms: u64,
    pub requests: u64,
    pub in_flight: i64,
    pub rss_bytes: u64,
}

/// Claims the entry of a worker process of `index` (`pair`: the entries of that index);
/// an entry is free when empty or when its process is gone.
pub fn claim(pair: &[ProcSlot], index: usize, pid: i32) -> Option<&ProcSlot> {
    for slot in pair {
        let old = slot.pid.load(Relaxed);
        if pid > 0
            && (old == 0 || !exists(old))
            && slot
                .pid
                .compare_exchange(old, pid, Relaxed, Relaxed)
                .is_ok()
        {
            slot.index.store(index as u32, Relaxed);
            slot.started_ms.store(unix_ms(), Relaxed);
            slot.requests.store(0, Relaxed);
            slot.in_flight.store(0, Relaxed);
            return Some(slot);
        }
    }
    None
}

/// The entries whose process still runs as a child of `master` (`None`: any parent).
pub fn live(table: &[ProcSlot], master: Option<i32>) -> Vec<ProcView> {
    let mut out = Vec::new();
    for slot in table {
        let pid = slot.pid.load(Relaxed);
        if pid <= 0 || !running_child(pid, master) {
            continue;
        }
        out.push(ProcView {
            pid,
            index: slot.index.load(Relaxed),
            started_unix_ms: slot.started_ms.load(Relaxed),
            requests: slot.requests.load(Relaxed),
            in_flight: slot.in_flight.load(Relaxed),
            rss_bytes: rss(pid),
        });
    }
    out.sort_by_key(|p| (p.index, p.started_unix_ms));
    out
}

fn exists(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Is `pid` running (not a zombie) with parent `master`?
fn running_child(pid: i32, master: Option<i32>) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let mut fields = rest.split_whitespace();
    let state = fields.next().unwrap_or("Z");
    let ppid: i32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    state != "Z" && state != "X" && master.is_none_or(|m| m == ppid)
}

/// Resident set size of `pid` in bytes (0 when unreadable).
fn rss(pid: i32) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
