//! One `order-local run` per state directory. The run holds an exclusive `flock` on `run.pid`
//! for as long as it runs (the file names its process id): a second run is refused (it would take
//! over `--local` and, when stopped, strand the first), and since the kernel releases the lock
//! when the process ends however it ends, a run killed with SIGKILL leaves no lock behind; the
//! next run sees the id it left in the file and cleans up its state.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::LocalError;

/// The lock, held until dropped (or the process ends).
pub struct RunLock {
    file: File,
}

/// Who holds the lock of a state directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// Nobody: no run.
    None,
    /// A run holds it: its process id as it wrote it (0 while it has not written it yet).
    Running(u32),
}

pub fn lock_path(dir: &Path) -> PathBuf {
    dir.join("run.pid")
}

/// `flock` without blocking: Ok(true) when taken, Ok(false) when another process holds it.
fn try_lock(file: &File, exclusive: bool) -> std::io::Result<bool> {
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    } | libc::LOCK_NB;
    // SAFETY: flock on a file descriptor this `File` owns; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(e)
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Who holds the lock in `dir` (a shared lock taken and dropped at once when nobody does).
pub fn holder(dir: &Path) -> Holder {
    let Ok(mut file) = File::open(lock_path(dir)) else {
        return Holder::None;
    };
    match try_lock(&file, false) {
        Ok(false) => Holder::Running(read_pid(&mut file).unwrap_or(0)),
        // Taken (released when `file` closes), or flock unsupported: no run holds it.
        Ok(true) | Err(_) => Holder::None,
    }
}

impl RunLock {
    /// Takes the lock in `dir`, or says which run holds it. `stale` names the files a killed
    /// run left that must go (they describe a stack nobody runs).
    pub fn acquire(dir: &Path, stale: &[&Path]) -> Result<Self, LocalError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| LocalError::Input(format!("create {}: {e}", dir.display())))?;
        let path = lock_path(dir);
        let io = |e: std::io::Error| LocalError::Input(format!("{}: {e}", path.display()));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        if !try_lock(&file, true).map_err(io)? {
            let pid =
                read_pid(&mut file).map_or_else(|| "starting".to_string(), |p| format!("pid {p}"));
            return Err(LocalError::Input(format!(
                "a local pipeline is already running (order-local {pid}, state in {}): use it (`cargo orders` reaches it), or stop it first with Ctrl-C in its terminal or `kill` of that pid",
                dir.display()
            )));
        }
        // A run that ended cleanly emptied the file; an id left in it is a killed run's.
        if let Some(pid) = read_pid(&mut file) {
            eprintln!(
                "cleaning up after a run that was killed (pid {pid}): its state files are removed"
            );
            for f in stale {
                let _ = std::fs::remove_file(f);
            }
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(std::process::id().to_string().as_bytes())
            .map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self { file })
    }
}

impl Drop for RunLock {
    /// A clean end: the file is emptied (the next run has nothing to clean up); the lock goes
    /// when the file closes. The file stays: removing it would let a run that opened it just
    /// before take a lock on a file nobody else sees.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
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

    /// Protects: while a run holds the lock, a second one is refused with the holder's id (flock
    /// locks are per open file, so a second open in the same process contends like another
    /// process); a clean end lets the next run in with nothing to clean up.
    #[test]
    fn a_second_run_is_refused_while_the_first_holds_the_lock() {
        let d = dir("second");
        let first = RunLock::acquire(&d, &[]).unwrap();
        assert_eq!(holder(&d), Holder::Running(std::process::id()));
        let refused = RunLock::acquire(&d, &[]).err().expect("refused");
        assert!(refused.to_string().contains("already running"), "{refused}");
        drop(first);
        assert_eq!(holder(&d), Holder::None, "the lock goes with the run");
        let stack = d.join("stack.json");
        std::fs::write(&stack, "{}").unwrap();
        let next = RunLock::acquire(&d, &[&stack]).unwrap();
        assert!(stack.exists(), "a clean end leaves nothing to clean up");
        drop(next);
    }

    /// Protects: a run killed with SIGKILL (its lock released by the kernel, its id left in the
    /// file) is cleaned up by the next run, which removes the state it left.
    #[test]
    fn a_killed_runs_state_is_cleaned_up_by_the_next_run() {
        let d = dir("stale");
        std::fs::create_dir_all(&d).unwrap();
        let stack = d.join("stack.json");
        std::fs::write(&stack, "{}").unwrap();
        std::fs::write(lock_path(&d), "4294967").unwrap();
        assert_eq!(holder(&d), Holder::None, "nobody holds a killed run's lock");
        let lock = RunLock::acquire(&d, &[&stack]).unwrap();
        assert!(!stack.exists(), "the killed run's stack.json is removed");
        assert_eq!(holder(&d), Holder::Running(std::process::id()));
        drop(lock);
    }
}
