//! A process's resource use and the machine's CPU, from /proc (Linux): what the runner reports
//! for a function run as a process, and what the benchmarks measure.

use std::sync::OnceLock;

/// What `/proc/<pid>/stat` says a process used: CPU in milliseconds, and page faults.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stat {
    pub user_ms: f64,
    pub system_ms: f64,
    /// Minor page faults (pages the kernel mapped on first touch).
    pub minor_faults: u64,
}

/// The kernel's clock ticks per second, in which /proc gives CPU times (USER_HZ: 100 on every
/// Linux architecture Lambda and the local tools support).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        // SAFETY: sysconf reads a constant of the system and takes no pointer.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if ticks > 0 {
            ticks as f64
        } else {
            100.0
        }
    })
}

/// utime, stime and minflt of process `pid`, from /proc/<pid>/stat.
pub fn stat(pid: u32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is the
    // first, minflt the 8th, utime the 12th, stime the 13th (proc(5)).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let minor_faults: u64 = fields.get(7)?.parse().ok()?;
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let ticks = ticks_per_second();
    Some(Stat {
        user_ms: utime * 1000.0 / ticks,
        system_ms: stime * 1000.0 / ticks,
        minor_faults,
    })
}

/// utime + stime of process `pid`, in milliseconds.
pub fn cpu_ms(pid: u32) -> Option<f64> {
    stat(pid).map(|s| s.user_ms + s.system_ms)
}

/// Peak resident memory (VmHWM) of process `pid`, in kB.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Context switches of every thread of process `pid` (voluntary + involuntary,
/// /proc/<pid>/task/*/status).
pub fn context_switches(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    Some(
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
            .flat_map(|status| {
                status
                    .lines()
                    .filter(|l| l.contains("ctxt_switches:"))
                    .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum(),
    )
}

/// The machine's CPU model, from /proc/cpuinfo.
pub fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Protects the figures `order-local demo --bootstraps` prints: CPU and peak memory are read
    /// from /proc for a live process, and a process that is gone reads as nothing, not as zero.
    #[test]
    fn usage_is_read_from_proc_for_a_live_process_and_none_for_a_gone_one() {
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(60) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let me = std::process::id();
        let cpu = cpu_ms(me).expect("this process's CPU time");
        assert!(cpu >= 10.0, "60 ms of spinning shows as CPU time: {cpu} ms");
        let rss = peak_rss_kb(me).expect("this process's peak memory");
        assert!(rss > 1024, "a test process holds more than 1 MB: {rss} kB");
        let gone = u32::MAX - 1;
        assert_eq!(cpu_ms(gone), None);
        assert_eq!(peak_rss_kb(gone), None);
    }

    /// Protects the figures order-bench prints for its processes: page faults and context
    /// switches are read for a live process (every thread's), and a gone one reads as nothing.
    #[test]
    fn faults_and_context_switches_are_read_for_a_live_process_and_none_for_a_gone_one() {
        let me = std::process::id();
        let s = stat(me).expect("this process's stat");
        assert!(s.minor_faults > 0, "{s:?}");
        assert!(s.user_ms + s.system_ms >= 0.0, "{s:?}");
        std::thread::sleep(Duration::from_millis(5));
        assert!(context_switches(me).expect("this process's threads") > 0);
        let gone = u32::MAX - 1;
        assert_eq!(stat(gone), None);
        assert_eq!(context_switches(gone), None);
        assert!(cpu_model().is_some_and(|m| !m.is_empty()) || cfg!(not(target_arch = "x86_64")));
    }
}
