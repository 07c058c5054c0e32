//! The shared-memory segment every process of one server counts into.
//!
//! Owns: creating it (an anonymous `memfd`, close-on-exec, sized for `MAX_WORKERS` worker
//! indexes and mapped `MAP_SHARED` by the master before it forks, so every worker inherits the
//! same pages), mapping an inherited one (`from_fd`: a re-executed master gets the fd by name
//! and checks the magic and version), and the fixed layout: header, label table, process
//! table (`PROCS_PER_INDEX` entries per index), one region per worker INDEX (a replacement of worker i adds to region i, so a
//! restart neither resets nor double counts). Pages of indexes and label slots never used are
//! never touched, so the sparse size costs no memory.
//! Must not touch: what the counters mean (`counter`, `render`).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::counter::Region;
use super::labels::Labels;
use super::procs::ProcSlot;

/// Worker indexes the segment has room for (a live reload may raise `--workers` up to this).
pub const MAX_WORKERS: usize = 256;
/// Process entries per worker index: a worker, its recycling replacement, and a rolling
/// restart's, all running at once at worst.
pub const PROCS_PER_INDEX: usize = 4;
/// `WSRUNMET` as a little-endian word.
const MAGIC: u64 = u64::from_le_bytes(*b"WSRUNMET");
/// Bumped whenever the layout below changes.
const VERSION: u32 = 2;

#[repr(C, align(64))]
struct Header {
    magic: AtomicU64,
    version: AtomicU32,
    size: AtomicU64,
}

/// The whole segment.
#[repr(C)]
pub struct Layout {
    header: Header,
    pub labels: Labels,
    pub procs: [ProcSlot; PROCS_PER_INDEX * MAX_WORKERS],
    /// Shared by the processes that found their index's entries all taken (never listed).
    pub spare: ProcSlot,
    pub regions: [Region; MAX_WORKERS],
}

/// A mapping of the segment, with the fd it came from.
pub struct MetricsSegment {
    fd: OwnedFd,
    layout: *const Layout,
}

// SAFETY: the mapping holds only atomics (and the fd); it is shared by design, between
// threads as between processes.
unsafe impl Send for MetricsSegment {}
// SAFETY: as above: every access goes through atomics.
unsafe impl Sync for MetricsSegment {}

const SIZE: usize = std::mem::size_of::<Layout>();

impl MetricsSegment {
    /// A new zeroed segment with room for `max_workers` indexes (at most `MAX_WORKERS`).
    pub fn create(max_workers: usize) -> io::Result<MetricsSegment> {
        if max_workers > MAX_WORKERS {
            return Err(io::Error::other(format!(
                "metrics have room for {MAX_WORKERS} workers, not {max_workers}"
            )));
        }
        // SAFETY: a NUL-terminated name and valid flags.
        let raw = unsafe { libc::memfd_create(c"wsrun-metrics".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: ftruncate on the fd we own; SIZE fits an off_t.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), SIZE as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let segment = MetricsSegment::map(fd)?;
        let header = &segment.layout().header;
        header.version.store(VERSION, Ordering::Relaxed);
        header.size.store(SIZE as u64, Ordering::Relaxed);
        segment.layout().labels.init();
        header.magic.store(MAGIC, Ordering::Release);
        Ok(segment)
    }

    /// Maps an inherited segment (close-on-exec cleared by whoever passed it); refuses an fd
    /// that is not one (size, magic or version differ).
    pub fn from_fd(fd: OwnedFd) -> io::Result<MetricsSegment> {
        // SAFETY: an all-zero stat is a valid out-value for fstat.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a valid fd and out-pointer.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if stat.st_size != SIZE as libc::off_t {
            return Err(io::Error::other("not a wsrun metrics segment (size)"));
        }
        let segment = MetricsSegment::map(fd)?;
        let header = &segment.layout().header;
        if header.magic.load(Ordering::Acquire) != MAGIC
            || header.version.load(Ordering::Relaxed) != VERSION
        {
            return Err(io::Error::other(
                "not a wsrun metrics segment of this version (magic/version)",
            ));
        }
        Ok(segment)
    }

    fn map(fd: OwnedFd) -> io::Result<MetricsSegment> {
        // SAFETY: a shared mapping of SIZE bytes of a file that is SIZE bytes long.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(MetricsSegment {
            fd,
            layout: ptr.cast::<Layout>(),
        })
    }

    /// The fd to hand to a re-executed master.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn layout(&self) -> &Layout {
        // SAFETY: the mapping is page-aligned (so aligned for `Layout`), SIZE bytes, lives as
        // long as `self`, and zeroed or written bytes are valid for the atomics it holds.
        unsafe { &*self.layout }
    }

    /// The region of worker `index`, if the segment has one.
    pub fn region(&self, index: usize) -> Option<&Region> {
        self.layout().regions.get(index)
    }

    /// The process entries of worker `index`.
    pub fn proc_entries(&self, index: usize) -> Option<&[ProcSlot]> {
        let first = PROCS_PER_INDEX * index;
        self.layout().procs.get(first..first + PROCS_PER_INDEX)
    }
}

impl Drop for MetricsSegment {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once; nothing borrows `self` any more.
        unsafe { libc::munmap(self.layout as *mut libc::c_void, SIZE) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inherited_fd_maps_the_same_pages_and_a_foreign_one_is_refused() {
        let segment = MetricsSegment::create(4).expect("a segment");
        let region = segment.region(3).expect("region 3");
        region.head.starts.fetch_add(2, Ordering::Relaxed);
        let dup = segment.fd().try_clone_to_owned().expect("dup");
        let again = MetricsSegment::from_fd(dup).expect("mapped again");
        assert_eq!(
            again
                .region(3)
                .map(|r| r.head.starts.load(Ordering::Relaxed)),
            Some(2)
        );
        let slot = again.layout().labels.claim("/api", "acme");
        assert_eq!(segment.layout().labels.claim("/api", "acme"), slot);
        assert!(MetricsSegment::create(MAX_WORKERS + 1).is_err());
        let file = tempfile::tempfile().expect("a file");
        assert!(MetricsSegment::from_fd(file.into()).is_err());
    }
}

#[cfg(test)]
mod label_tests {
    use super::*;
    use crate::metrics::labels::{clip, LABELS, OTHER};

    #[test]
    fn a_pair_gets_one_slot_until_the_table_is_full() {
        let segment = MetricsSegment::create(1).expect("a segment");
        let labels = &segment.layout().labels;
        let api = labels.claim("/api", "");
        assert_eq!(api, 2, "slots 0 and 1 are reserved");
        assert_eq!(labels.claim("/api", ""), api);
        assert_ne!(labels.claim("/api", "acme"), api);
        for i in 0..LABELS {
            labels.claim(&format!("/r{i}"), "");
        }
        assert_eq!(labels.claim("/one-too-many", ""), OTHER);
        let ready = labels.ready();
        assert_eq!(ready.len(), LABELS);
        assert_eq!(
            (ready[0].1.as_str(), ready[1].1.as_str()),
            ("(other)", "(none)")
        );
        assert_eq!(ready[2], (2, "/api".to_string(), String::new()));
    }

    #[test]
    fn long_names_are_clipped_on_a_character_boundary() {
        let long = "é".repeat(200);
        let clipped = clip(&long, 176);
        assert!(clipped.len() <= 176 && clipped.len() >= 175);
        assert!(long.starts_with(clipped));
    }
}
