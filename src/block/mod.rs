//! Kernel firewall blocking with expiry, safety checks and state. (Skeleton.)
