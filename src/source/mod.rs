//! Where `repute watch` reads from, continuously: log files followed across rotations
//! ([`mod@file`]), the systemd journal through `journalctl` ([`journal`]), and where each stands,
//! saved in the shared store so a restart resumes exactly ([`position`]), and inotify to
//! read a line as soon as it is written ([`wake`]).
//!
//! Sources hand over text (a line, or a journal entry's fields); the sshd parser makes
//! attempts of it, as for `repute scan`.

pub mod file;
pub mod journal;
pub mod position;
pub mod wake;

pub use file::{FileFollower, Position, StartAt};
pub use journal::{JournalEntry, JournalOptions, JournalSource};
pub use position::PositionStore;
