//! One `order-local run` per state directory. The run holds `run.pid` while it runs; a second
//! run on the same state is refused (it would take over `--local` and, when stopped, strand the
//! first), and the state a killed run left behind is cleaned up by the next one.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::LocalError;

/// The lock file, removed when the run ends (dropped).
pub struct RunLock {
    path: PathBuf,
}

/// What a lock file says about the run that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// No lock file: no run.
    None,
    /// The run is alive.
    Running(u32),
    /// The run that wrote it is gone (killed, or the machine restarted).
    Gone(u32),
}

pub fn lock_path(dir: &Path) -> PathBuf {
    dir.join("run.pid")
}

/// Who holds the lock in `dir`.
pub fn holder(dir: &Path) -> Holder {
    let Ok(text) = std::fs::read_to_string(lock_path(dir)) else {
        return Holder::None;
    };
    let mut parts = text.split_whitespace();
    let pid = parts.next().and_then(|p| p.parse::<u32>().ok());
    let started = parts.next().and_then(|s| s.parse::<u64>().ok());
    match (pid, started) {
        (Some(pid), Some(started)) if start_time(pid) == Some(started) => Holder::Running(pid),
        (Some(pid), _) => Holder::Gone(pid),
        // Torn or foreign content: nobody can be holding it.
        (None, _) => Holder::Gone(0),
    }
}

/// When process `pid` started (clock ticks after boot, /proc/PID/stat's 22nd field): with the
/// id it names one process, not another that got the id after the run was killed.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

impl RunLock {
    /// Takes the lock in `dir`, or says which run holds it. `stale` names the files a killed
    /// run left that must go with its lock (they describe a stack nobody runs).
    pub fn acquire(dir: &Path, stale: &[&Path]) -> Result<Self, LocalError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| LocalError::Input(format!("create {}: {e}", dir.display())))?;
        let path = lock_path(dir);
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let me = std::process::id();
                    let started = start_time(me).unwrap_or_default();
                    file.write_all(format!("{me} {started}").as_bytes())
                        .map_err(|e| LocalError::Input(format!("write {}: {e}", path.display())))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match holder(dir) {
                    Holder::Running(pid) => {
                        return Err(LocalError::Input(format!(
                            "a local pipeline is already running (order-local pid {pid}, state in {}): use it (`--local` reaches it), or stop it first with Ctrl-C in its terminal or `kill {pid}`",
                            dir.display()
                        )))
                    }
                    Holder::Gone(pid) => {
                        eprintln!(
                            "cleaning up after a run that was killed (pid {pid}): its state files are removed"
                        );
                        for file in stale {
                            let _ = std::fs::remove_file(file);
                        }
                        let _ = std::fs::remove_file(&path);
                    }
                    Holder::None => {}
                },
                Err(e) => {
                    return Err(LocalError::Input(format!(
                        "create {}: {e}",
                        path.display()
                    )))
                }
            }
        }
        Err(LocalError::Input(format!(
            "could not take {}: another run is starting at the same time; try again",
            path.display()
        )))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("run-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn the_lock_file_names_the_run_and_goes_with_it() {
        let d = dir("names");
        let first = RunLock::acquire(&d, &[]).unwrap();
        assert_eq!(holder(&d), Holder::Running(std::process::id()));
        // The same id with another start time: a process that got the id later.
        std::fs::write(lock_path(&d), format!("{} 1", std::process::id())).unwrap();
        assert_eq!(holder(&d), Holder::Gone(std::process::id()));
        drop(first);
        assert_eq!(holder(&d), Holder::None, "the lock goes with the run");
    }

    #[test]
    fn a_killed_runs_lock_and_state_are_cleaned_up_by_the_next_run() {
        let d = dir("stale");
        std::fs::create_dir_all(&d).unwrap();
        let stack = d.join("stack.json");
        std::fs::write(&stack, "{}").unwrap();
        // No process has this id (above the kernel's pid_max).
        std::fs::write(lock_path(&d), "4294967").unwrap();
        assert_eq!(holder(&d), Holder::Gone(4294967));
        let lock = RunLock::acquire(&d, &[&stack]).unwrap();
        assert!(!stack.exists(), "the dead run's stack.json is removed");
        assert_eq!(holder(&d), Holder::Running(std::process::id()));
        drop(lock);
    }
}
