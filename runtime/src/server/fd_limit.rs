//! The open-file limit and the connection cap that follows from it.
//!
//! Owns: raising the soft `RLIMIT_NOFILE` to the hard limit at start-up (the master does it
//! before forking, so every worker inherits it), and the default per-worker connection cap:
//! every connection is one descriptor, so the cap is what the limit leaves after a reserve
//! for everything else a worker opens. Must not touch: accepting or evicting connections
//! (`worker`, `live_connections`).

use std::io;

/// Descriptors kept for what is not a client connection: listeners, the journal, spool files,
/// WebAssembly's memfds, log files, the Python app's own files.
const RESERVED_FDS: u64 = 256;
/// The smallest default cap, whatever the limit says.
const MIN_DEFAULT_CAP: u64 = 64;

/// Raises the soft open-file limit to the hard one; returns the soft limit now in force.
pub fn raise_open_file_limit() -> io::Result<u64> {
    let mut limit = current()?;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit; raising the soft limit up to the hard one needs
        // no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// The soft open-file limit of this process.
pub fn open_file_limit() -> io::Result<u64> {
    Ok(current()?.rlim_cur)
}

fn current() -> io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(limit)
}

/// A worker's connection cap: `configured`, or with 0 what `open_files` leaves after the
/// reserve.
pub fn connection_cap(configured: u64, open_files: u64) -> usize {
    let cap = match configured {
        0 => open_files.saturating_sub(RESERVED_FDS).max(MIN_DEFAULT_CAP),
        n => n,
    };
    usize::try_from(cap).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_follows_the_limit() {
        assert_eq!(connection_cap(0, 20_000), 19_744);
        assert_eq!(connection_cap(0, 100), 64);
        assert_eq!(connection_cap(7, 20_000), 7);
    }

    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let raised = raise_open_file_limit().unwrap();
        assert_eq!(raised, current().unwrap().rlim_max);
        assert_eq!(open_file_limit().unwrap(), raised);
    }
}
