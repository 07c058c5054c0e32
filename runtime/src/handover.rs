//! What one master image hands the next across the `execv` of a configuration reload.
//!
//! Owns: the `WSRUN_HANDOVER` environment variable (JSON): the named file descriptors that
//! cross the exec (listeners, and any other subsystem's: the admin listener, a metrics
//! segment), the running workers, the reload generation, whether another reload was asked for
//! meanwhile, the working directory and the state directory. Also the two small public APIs
//! around the descriptors: [`Inherited`] (the new image takes a named fd, what nobody takes is
//! closed) and [`Outgoing`] (a subsystem registers a named fd to pass on). Must not touch:
//! when a reload happens or what is done with the workers (`server::supervisor`), or sockets
//! (`server::listener_set`).
//!
//! Descriptors are passed by number: the exec keeps every descriptor without `FD_CLOEXEC`,
//! so [`Outgoing::clear_cloexec`] runs just before `execv` and [`Outgoing::restore_cloexec`]
//! if the exec failed.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The environment variable the old image sets for the new one.
pub const ENV: &str = "WSRUN_HANDOVER";

/// A worker process running when the old image exec'd (still a child: the pid is the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandedWorker {
    pub pid: i32,
    pub index: usize,
    /// The reload generation whose configuration this worker runs.
    pub generation: u64,
    /// It was already told to stop (it drains, then exits).
    pub stopping: bool,
}

/// The handover's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    /// The generation being applied by the new image.
    pub generation: u64,
    /// A `SIGHUP` arrived while the old image was reloading: reload again once this one is done.
    pub pending: bool,
    /// The directory wsrun started in (before any `chdir`): relative arguments resolve there.
    pub cwd: PathBuf,
    pub state_dir: PathBuf,
    pub workers: Vec<HandedWorker>,
    /// Descriptor number by name.
    pub fds: BTreeMap<String, RawFd>,
}

impl Handover {
    /// The handover this process was started with, if any; removes the variable from the
    /// environment so that no child sees it. Call before any thread starts.
    pub fn from_env() -> Result<Option<Handover>, String> {
        let Some(text) = std::env::var_os(ENV) else {
            return Ok(None);
        };
        std::env::remove_var(ENV);
        let text = text.to_string_lossy();
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{ENV} is not a valid handover: {e}"))
    }

    pub fn to_json(&self) -> String {
        // A map of strings to numbers and plain structs: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The descriptors a new image inherited, by name; what is not taken is closed on drop.
#[derive(Debug, Default)]
pub struct Inherited {
    fds: BTreeMap<String, OwnedFd>,
}

impl Inherited {
    /// Takes ownership of the descriptors `handover` names.
    ///
    /// # Safety
    /// The numbers must be open descriptors this process owns and that nothing else will
    /// close: true of a handover read from [`ENV`] at the start of `main`.
    pub unsafe fn adopt(handover: &Handover) -> Inherited {
        let fds = handover
            .fds
            .iter()
            .filter(|(_, fd)| **fd >= 0)
            // SAFETY: the caller promises each number is an open descriptor owned by nobody
            // else; each is wrapped once (the map's values are distinct names' numbers).
            .map(|(name, fd)| (name.clone(), unsafe { OwnedFd::from_raw_fd(*fd) }))
            .collect::<BTreeMap<_, _>>();
        // Cleared for the exec; set again so no child this image starts inherits them.
        for fd in fds.values() {
            let _ = set_cloexec(fd.as_raw_fd(), true);
        }
        Inherited { fds }
    }

    /// The descriptor registered as `name` by the old image, if any.
    pub fn take(&mut self, name: &str) -> Option<OwnedFd> {
        self.fds.remove(name)
    }

    /// Whether a descriptor named `name` was inherited (and not taken yet).
    pub fn has(&self, name: &str) -> bool {
        self.fds.contains_key(name)
    }

    /// Every descriptor not taken, to hand on as they are (this set keeps owning them).
    pub fn outgoing(&self) -> Outgoing {
        let mut outgoing = Outgoing::default();
        for (name, fd) in &self.fds {
            outgoing.register(name.clone(), fd.as_raw_fd());
        }
        outgoing
    }
}

/// The named descriptors to pass to the next image. The registering subsystem keeps owning
/// each descriptor and must keep it open for the master's life.
#[derive(Debug, Default, Clone)]
pub struct Outgoing {
    fds: BTreeMap<String, RawFd>,
}

impl Outgoing {
    /// Passes descriptor `fd` to the next image as `name` (a later registration of the same
    /// name wins).
    pub fn register(&mut self, name: impl Into<String>, fd: RawFd) {
        self.fds.insert(name.into(), fd);
    }

    pub fn fds(&self) -> &BTreeMap<String, RawFd> {
        &self.fds
    }

    /// Clears `FD_CLOEXEC` on every registered descriptor (just before `execv`).
    pub fn clear_cloexec(&self) -> io::Result<()> {
        self.fds.values().try_for_each(|fd| set_cloexec(*fd, false))
    }

    /// Sets `FD_CLOEXEC` again (the exec failed): no forked child or spawned check inherits them.
    pub fn restore_cloexec(&self) {
        for fd in self.fds.values() {
            let _ = set_cloexec(*fd, true);
        }
    }
}

fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor number has no memory-safety requirements; a closed
    // number fails with EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = match on {
        true => flags | libc::FD_CLOEXEC,
        false => flags & !libc::FD_CLOEXEC,
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The name of the listener of worker `index` on the configured address `addr`.
pub fn listener_name(index: usize, addr: &std::net::SocketAddr) -> String {
    format!("listener/{index}/{addr}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handover_round_trips_through_json() {
        let mut fds = BTreeMap::new();
        fds.insert("admin".to_string(), 7);
        let handover = Handover {
            generation: 3,
            pending: true,
            cwd: PathBuf::from("/srv"),
            state_dir: PathBuf::from("/srv/.wsrun"),
            workers: vec![HandedWorker {
                pid: 42,
                index: 1,
                generation: 2,
                stopping: false,
            }],
            fds,
        };
        let back: Handover = serde_json::from_str(&handover.to_json()).expect("parse");
        assert_eq!(back, handover);
    }

    #[test]
    fn cloexec_is_cleared_and_restored() {
        let file = tempfile::tempfile().expect("tempfile");
        let fd = file.as_raw_fd();
        let mut out = Outgoing::default();
        out.register("metrics", fd);
        // SAFETY: F_GETFD on our own open descriptor.
        let cloexec = || unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC != 0;
        assert!(cloexec());
        out.clear_cloexec().expect("clear");
        assert!(!cloexec());
        out.restore_cloexec();
        assert!(cloexec());
    }

    #[test]
    fn an_inherited_fd_is_taken_once() {
        let file = tempfile::tempfile().expect("tempfile");
        // SAFETY: dup of our own open descriptor.
        let dup = unsafe { libc::dup(file.as_raw_fd()) };
        let mut handover = Handover::default();
        handover.fds.insert("admin".into(), dup);
        // SAFETY: `dup` is open and owned by nothing else.
        let mut inherited = unsafe { Inherited::adopt(&handover) };
        assert!(inherited.has("admin"));
        assert!(inherited.take("admin").is_some());
        assert!(inherited.take("admin").is_none());
    }
}
