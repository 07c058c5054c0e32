//! The master re-executing itself in place for a reload.
//!
//! Owns: the `execv` of `/proc/self/exe` with the master's own arguments, in the directory
//! wsrun started in, with the handover in the environment and the handed descriptors' close-on-
//! exec flag cleared; and undoing all of that when the exec fails. Must not touch: what the
//! handover holds (`reload`, `crate::handover`) or when a reload happens.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;

use super::reload_state::ReloadSetup;
use crate::handover::{Handover, ENV};

/// `execv`s `/proc/self/exe` with the master's argv and the handover; returns the error if the
/// exec failed (everything it changed is put back).
pub(super) fn exec_self(setup: &ReloadSetup, handover: &Handover) -> io::Error {
    let argv: Result<Vec<CString>, _> = setup
        .argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect();
    let Ok(argv) = argv else {
        return io::Error::new(io::ErrorKind::InvalidInput, "an argument holds a NUL byte");
    };
    let mut pointers: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    pointers.push(std::ptr::null());
    let here = std::env::current_dir().ok();
    if let Err(e) = std::env::set_current_dir(&setup.cwd) {
        return e;
    }
    if let Err(e) = setup.outgoing.clear_cloexec() {
        setup.outgoing.restore_cloexec();
        return e;
    }
    // The master has no other threads (a precondition of `supervise`): changing the
    // environment cannot race a reader.
    std::env::set_var(ENV, handover.to_json());
    flush_stdio();
    let path = c"/proc/self/exe";
    // SAFETY: `path` and every `pointers` entry are NUL-terminated strings that outlive the
    // call, and `pointers` ends with a null pointer.
    unsafe { libc::execv(path.as_ptr(), pointers.as_ptr()) };
    let error = io::Error::last_os_error();
    std::env::remove_var(ENV);
    setup.outgoing.restore_cloexec();
    if let Some(dir) = here {
        let _ = std::env::set_current_dir(dir);
    }
    error
}

fn flush_stdio() {
    use std::io::Write;
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
}
