//! Waking the watch loop when a followed file changes, instead of only on a timer: inotify
//! on the directories of the followed files (a rename or a new file shows there, as does a
//! write to the file), so a line is read within milliseconds of being written.
//!
//! Events are only a hint: every wake-up leads to a full poll of every source, and the loop
//! still polls on its timer, so a missed event (a full queue, a file system without inotify,
//! a directory that did not exist at start) costs latency, never lines.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An inotify descriptor watching some directories; `None` where inotify is unavailable.
pub struct Wakeup {
    fd: Option<OwnedFd>,
}

impl Wakeup {
    /// Watches the parent directory of each path (each directory once).
    pub fn for_files(paths: &[PathBuf]) -> Wakeup {
        // SAFETY: inotify_init1 has no preconditions; the result is checked.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            tracing::debug!("no inotify; polling on the timer only");
            return Wakeup { fd: None };
        }
        // SAFETY: `raw` is a descriptor we own from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut dirs: Vec<&Path> = paths
            .iter()
            .filter_map(|p| p.parent())
            .map(|d| {
                if d.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    d
                }
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        let mask = libc::IN_MODIFY
            | libc::IN_CREATE
            | libc::IN_MOVED_TO
            | libc::IN_MOVED_FROM
            | libc::IN_DELETE
            | libc::IN_ATTRIB
            | libc::IN_CLOSE_WRITE;
        for dir in dirs {
            let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
                continue;
            };
            // SAFETY: a valid descriptor and a NUL-terminated path.
            if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask) } < 0 {
                tracing::debug!(dir = %dir.display(), "cannot watch; polling on the timer");
            }
        }
        Wakeup { fd: Some(fd) }
    }

    /// Waits up to `timeout` for a change (or a signal), then empties the event queue.
    pub fn wait(&self, timeout: Duration) {
        let Some(fd) = &self.fd else {
            std::thread::sleep(timeout);
            return;
        };
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd. A signal ends the wait early (EINTR), which is wanted.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ready > 0 {
            let mut buf = [0u8; 4096];
            // SAFETY: reading into a buffer we own; the descriptor is non-blocking.
            while unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        }
    }
}
