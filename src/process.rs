//! Process self-metrics read from `/proc/self` (prometheus-client has no process collector).
//! Off Linux, or if `/proc` is unreadable, the values are simply absent. The tests, the soak and
//! the scale bench read the exporter's process the same way ([`read_pid`]).

/// CPU seconds, resident bytes, open file descriptors and start time of this process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub open_fds: u64,
    pub start_time_seconds: f64,
}

/// Clock ticks per second of `/proc/self/stat` times: USER_HZ, 100 on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;
/// Page size for `/proc/self/statm`; 4 KiB on x86_64 and most arm64 kernels.
const PAGE_SIZE: u64 = 4096;

/// Reads this process's current values; `None` where `/proc` is not available.
pub fn read() -> Option<ProcessStats> {
    read_at("/proc/self")
}

/// Reads the current values of process `pid`; `None` when it is gone or `/proc` is not available.
pub fn read_pid(pid: u32) -> Option<ProcessStats> {
    read_at(&format!("/proc/{pid}"))
}

fn read_at(dir: &str) -> Option<ProcessStats> {
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // After ')': state is field 0, utime 11, stime 12, starttime 19 (proc(5) numbering minus 3).
    let cpu_seconds = (ticks(11)? + ticks(12)?) / TICKS_PER_SECOND;
    let start_ticks = ticks(19)?;
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok())?;
    let resident_pages: u64 = std::fs::read_to_string(format!("{dir}/statm"))
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let open_fds = std::fs::read_dir(format!("{dir}/fd")).map_or(0, |d| d.count() as u64);
    Some(ProcessStats {
        cpu_seconds,
        resident_bytes: resident_pages * PAGE_SIZE,
        open_fds,
        start_time_seconds: boot_time + start_ticks / TICKS_PER_SECOND,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_plausible_values_of_this_process() {
        let p = super::read().expect("/proc is readable on Linux");
        assert!(p.resident_bytes > 1 << 20, "at least 1 MiB resident");
        assert!(p.open_fds >= 3, "stdin, stdout, stderr");
        assert!(p.cpu_seconds >= 0.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        assert!(p.start_time_seconds <= now + 1.0 && p.start_time_seconds > now - 86_400.0);
        let by_pid = super::read_pid(std::process::id()).expect("this process by pid");
        assert!(by_pid.resident_bytes > 1 << 20 && by_pid.open_fds >= 3);
        assert_eq!(by_pid.start_time_seconds, p.start_time_seconds);
        assert!(super::read_pid(u32::MAX).is_none(), "no such process");
    }
}
