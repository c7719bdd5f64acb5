//! Settings of the C library's allocator, made once at start-up, before the runtime's threads.
//!
//! At scale the operator's memory is a few large lists made anew at each batch (the full
//! record of a 50,000-number object is about 5 MB) and many small shared SIDs. With glibc's
//! defaults:
//! - the mmap threshold rises to the size of the largest block freed (up to 32 MiB), so after
//!   the first batch every such list comes from the heap instead of its own mapping; a freed
//!   list then leaves a hole that small allocations made meanwhile pin, and the process keeps
//!   it;
//! - every thread that meets contention gets an arena of its own (up to 8 per core), each
//!   keeping its own free memory.
//!
//! A fixed threshold of 128 KiB gives each large list its own mapping, returned whole when
//! freed, and one arena serves every thread: the reconciles run on the runtime's few worker
//! threads and mostly wait on Twilio, so they seldom contend for it. Measured at 50,000
//! numbers (docs/benchmarks.md, item 11): peak RSS 89.5 MiB with the defaults, 69.5 with the
//! threshold and two arenas, 58.3 with one, and no slower. An operator who sets
//! `MALLOC_MMAP_THRESHOLD_` or `MALLOC_ARENA_MAX` keeps their value.

/// Applies the settings (glibc only; elsewhere nothing).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set = |name: &str, param: libc::c_int, value: libc::c_int| {
            if std::env::var_os(name).is_none() {
                // SAFETY: `mallopt` only changes allocator parameters; it is called before any
                // other thread exists, and a refused value (return 0) leaves the default.
                unsafe { libc::mallopt(param, value) };
            }
        };
        set("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 128 * 1024);
        set("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, 1);
    }
}
