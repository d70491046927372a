//! The reputation cache and quota state. (Skeleton.)
