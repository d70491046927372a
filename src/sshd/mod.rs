//! sshd log lines to [`Attempt`](crate::Attempt)s. (Skeleton: filled in by the "Core" issue.)
