//! What the bench reads of a process from `/proc`: CPU seconds and resident memory (as the
//! exporter's own `process` module reads them), the peak resident memory, and the CPU time of the
//! calling thread (for the in-process floor).

/// utime + stime of a process, in seconds (10 ms resolution; 0 once it is gone).
pub fn cpu_seconds(pid: u32) -> f64 {
    kube_rollout_exporter::process::read_pid(pid).map_or(0.0, |p| p.cpu_seconds)
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field)?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

/// Resident memory now, in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    kube_rollout_exporter::process::read_pid(pid).map_or(0, |p| p.resident_bytes)
}

/// Peak resident memory since the start or the last [`reset_peak`], in bytes.
pub fn peak_rss_bytes(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:") * 1024
}

/// Resets the peak resident memory to the current one (`clear_refs` 5, Linux 4.0+).
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// CPU time of the calling thread in nanoseconds (`/proc/thread-self/schedstat`).
pub fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
