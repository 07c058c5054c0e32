//! Profile-guided optimisation, the training half: an instrumented build (`tools/build-pgo`,
//! feature `pgo-training`) writes its counters before a process ends.
//!
//! Workers end with `_exit` (the master's atexit handlers and stdio buffers are not theirs), so
//! the LLVM profile runtime's own atexit writer never runs in them; `before_exit` writes the
//! profile by hand there. In every normal build it is an empty function.
//! Owns: that one call. Must not touch: when or how a process exits.

/// Writes the LLVM profile counters of this process, in a build with `pgo-training`; nothing
/// otherwise. Call it right before `libc::_exit`.
pub fn before_exit() {
    #[cfg(feature = "pgo-training")]
    {
        extern "C" {
            /// From the LLVM profile runtime `-Cprofile-generate` links in; writes the counters
            /// to `LLVM_PROFILE_FILE` (merging with what other processes wrote there).
            fn __llvm_profile_write_file() -> i32;
        }
        // SAFETY: the symbol exists in every build made with `-Cprofile-generate`, which the
        // feature requires (tools/build-pgo sets both); it only reads counters and writes a
        // file.
        let status = unsafe { __llvm_profile_write_file() };
        if status != 0 {
            eprintln!("wsrun: could not write the PGO training profile ({status})");
        }
    }
}
