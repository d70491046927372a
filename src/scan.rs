//! `repute scan`: streaming reading of logs and per-address summaries. (Skeleton.)
