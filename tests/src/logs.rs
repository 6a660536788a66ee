//! Captures the broker's log lines so tests can check what it said about a peer.

use std::sync::{Mutex, OnceLock};

static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = format!("{} {}", record.level(), record.args());
            if std::env::var_os("MOAT_TEST_LOG").is_some() {
                eprintln!("{line}");
            }
            lines().lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line);
        }
    }

    fn flush(&self) {}
}

fn lines() -> &'static Mutex<Vec<String>> {
    LINES.get_or_init(Mutex::default)
}

/// Installs the capturing logger (once per test process; later calls do nothing).
pub fn install() {
    static LOGGER: Capture = Capture;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

/// Every captured line containing all of `parts` (set `MOAT_TEST_LOG=1` to see them all).
pub fn matching(parts: &[&str]) -> Vec<String> {
    let lines = lines().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    lines.iter().filter(|line| parts.iter().all(|p| line.contains(p))).cloned().collect()
}

/// Waits up to 2 s for a line containing all of `parts`; returns it.
pub fn wait_for(parts: &[&str]) -> Option<String> {
    for _ in 0..200 {
        if let Some(line) = matching(parts).pop() {
            return Some(line);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}
