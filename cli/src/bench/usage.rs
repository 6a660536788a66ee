//! CPU time and memory of a process, from Linux's /proc: the bench's own (to show what the
//! tool costs) and, with `--broker-pid`, the broker's. Elsewhere these are simply absent.

use std::time::Instant;

/// CPU time of every thread of process `pid` (`self` for this one), in nanoseconds: the sum
/// of the first field of `/proc/PID/task/*/schedstat`.
fn cpu_ns(pid: &str) -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(task) = task else { continue };
        // A thread may end between listing and reading: skip it.
        if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat"))
            && let Some(ns) = stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok())
        {
            total += ns;
        }
    }
    Some(total)
}

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/PID/status`).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time used by a process since this was made.
#[derive(Debug)]
pub(crate) struct CpuClock {
    pid: String,
    cpu_at_start: Option<u64>,
    started: Instant,
}

/// CPU seconds over wall-clock seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuUse {
    /// CPU seconds, all threads.
    pub(crate) cpu_secs: f64,
    /// Wall-clock seconds.
    pub(crate) wall_secs: f64,
}

impl CpuUse {
    /// CPU time as a percentage of one core over the wall-clock time.
    pub(crate) fn percent(&self) -> f64 {
        if self.wall_secs > 0.0 { 100.0 * self.cpu_secs / self.wall_secs } else { 0.0 }
    }
}

impl CpuClock {
    /// Starts counting for this process.
    pub(crate) fn this_process() -> Self {
        Self::of("self".to_owned())
    }

    fn of(pid: String) -> Self {
        let cpu_at_start = cpu_ns(&pid);
        Self { pid, cpu_at_start, started: Instant::now() }
    }

    /// CPU and wall-clock time since the start; `None` without /proc.
    pub(crate) fn elapsed(&self) -> Option<CpuUse> {
        let now = cpu_ns(&self.pid)?;
        #[allow(clippy::cast_precision_loss)]
        let cpu_secs = now.saturating_sub(self.cpu_at_start?) as f64 / 1e9;
        Some(CpuUse { cpu_secs, wall_secs: self.started.elapsed().as_secs_f64() })
    }
}

/// The broker's process, watched from the start of the run.
#[derive(Debug)]
pub(crate) struct ProcessUsage {
    pid: u32,
    cpu: CpuClock,
    rss_before: Option<u64>,
}

/// What the broker used during the run.
#[derive(Debug, Clone)]
pub(crate) struct BrokerUsage {
    /// Its process id.
    pub(crate) pid: u32,
    /// CPU time over the run, `None` if it could not be read.
    pub(crate) cpu: Option<CpuUse>,
    /// Resident memory before the first connection, KiB.
    pub(crate) rss_before_kib: Option<u64>,
    /// Resident memory with every connection up (just before they close), KiB.
    pub(crate) rss_loaded_kib: Option<u64>,
}

impl ProcessUsage {
    /// Starts watching process `pid`.
    pub(crate) fn start(pid: u32) -> Self {
        let usage = Self { pid, cpu: CpuClock::of(pid.to_string()), rss_before: rss_kib(pid) };
        if usage.rss_before.is_none() {
            log::warn!("--broker-pid {pid}: cannot read /proc/{pid}/status; no broker figures");
        }
        usage
    }

    /// What it used until now.
    pub(crate) fn sample(self) -> BrokerUsage {
        BrokerUsage {
            pid: self.pid,
            cpu: self.cpu.elapsed(),
            rss_before_kib: self.rss_before,
            rss_loaded_kib: rss_kib(self.pid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CpuClock, ProcessUsage};

    #[test]
    fn this_process_can_be_measured_on_linux() {
        if !std::path::Path::new("/proc/self/task").exists() {
            return;
        }
        let clock = CpuClock::this_process();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(clock.elapsed().expect("schedstat").cpu_secs > 0.0);
        let usage = ProcessUsage::start(std::process::id()).sample();
        assert!(usage.rss_before_kib.is_some_and(|kib| kib > 0));
        assert!(usage.rss_loaded_kib.is_some_and(|kib| kib > 0));
    }
}
