//! The fast way to a file: one `openat2(2)` beneath the route's root directory.
//!
//! Owns: opening a request path's file relative to the root's descriptor with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, so the kernel itself refuses any escape and any
//! symlink, in one system call instead of a `realpath` walk plus `stat` plus `open`. Anything
//! but a plain regular file reached without a symlink (a directory, a symlink on the way, an
//! old kernel) is left to `resolve`, whose rules are the reference; this file only takes the
//! paths those rules already allow (`resolve::segments`). Must not touch: headers or bodies.

use std::ffi::CString;
use std::fs::{File, Metadata};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::resolve::segments;

/// `struct open_how` of linux/openat2.h (libc's is `non_exhaustive`).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// What the fast path found.
// Returned once per request and matched at once: boxing the large variant would cost an
// allocation for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Opened {
    /// A regular file: its path (under the canonical root, no symlink on the way), the file
    /// and its metadata (taken once: `send` uses it).
    File(PathBuf, File, Metadata),
    /// Nothing there (and no symlink on the way): 404 without asking `resolve`.
    Missing,
    /// Ask `resolve` (a directory, a symlink, a refused path, or openat2 unavailable).
    Resolve,
}

/// Opens `rel` (percent-decoded) beneath `root_fd`, the descriptor of the canonical `root`.
pub fn beneath(root_fd: &OwnedFd, root: &Path, rel: &[u8], hidden: bool) -> Opened {
    let Some(segments) = segments(rel, hidden) else {
        return Opened::Resolve;
    };
    if segments.is_empty() || rel.ends_with(b"/") {
        return Opened::Resolve;
    }
    let joined = segments.join("/");
    let Ok(name) = CString::new(joined.as_bytes()) else {
        return Opened::Resolve;
    };
    let how = OpenHow {
        // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below anyway).
        flags: (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK) as u64,
        mode: 0,
        resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: `name` is a NUL-terminated string and `how` a properly sized open_how, both alive
    // for the call; the kernel only reads them. A non-negative result is a new descriptor.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root_fd.as_raw_fd(),
            name.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        let missing = std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT);
        return if missing {
            Opened::Missing
        } else {
            Opened::Resolve
        };
    }
    let Ok(fd) = i32::try_from(fd) else {
        return Opened::Resolve;
    };
    // SAFETY: openat2 returned this descriptor to us and nothing else owns it.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    match file.metadata() {
        Ok(meta) if meta.is_file() => Opened::File(root.join(joined), file, meta),
        _ => Opened::Resolve,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_files_beneath_the_root_without_symlinks() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).expect("dirs");
        std::fs::write(root.join("sub/a.txt"), "a").expect("file");
        std::fs::write(dir.path().join("outside"), "no").expect("file");
        std::os::unix::fs::symlink(dir.path().join("outside"), root.join("out")).expect("link");
        std::os::unix::fs::symlink(root.join("sub/a.txt"), root.join("b.txt")).expect("link");
        let root = root.canonicalize().expect("canonical");
        let fd = OwnedFd::from(File::open(&root).expect("root"));
        let open = |rel: &str| beneath(&fd, &root, rel.as_bytes(), false);
        assert!(matches!(open("/sub/a.txt"), Opened::File(p, _, _) if p == root.join("sub/a.txt")));
        assert!(matches!(open("/nope"), Opened::Missing));
        for rel in ["/out", "/b.txt", "/sub", "/sub/", "/../outside", "/.x", ""] {
            assert!(matches!(open(rel), Opened::Resolve), "{rel}");
        }
    }
}
