//! Lowering the priority of one of wsrun's own background threads.
//!
//! Owns: `lower_this_thread`, the one place that calls `setpriority`. Must not touch: which
//! threads are lowered or why (each caller says so, next to its nice value).

/// Gives the calling thread the nice value `nice` (higher: less CPU when the CPU is
/// contended). A refusal is ignored: the thread then keeps the process's priority.
pub fn lower_this_thread(nice: libc::c_int) {
    // SAFETY: setpriority on the calling thread's own id changes only its nice value.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_calling_thread_gets_the_nice_value_and_no_other_thread_does() {
        // SAFETY: getpriority only reads the calling thread's nice value.
        let nice_of_this_thread =
            || unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        let before = nice_of_this_thread();
        let wanted = (before + 7).min(19); // 19: the lowest priority there is
        let lowered = std::thread::spawn(move || {
            super::lower_this_thread(wanted);
            nice_of_this_thread()
        })
        .join()
        .expect("thread");
        assert_eq!(lowered, wanted);
        assert_eq!(nice_of_this_thread(), before);
    }
}
