//! Address classes from the IANA IPv4 and IPv6 special-purpose address registries.
//!
//! `is_public()` is the only gate for sending an address to a reputation provider.
//! (Skeleton: the tables are filled in by the "Core" issue.)

use std::net::IpAddr;

use serde::Serialize;

/// What an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddrClass {
    Public,
    Private,
    Shared,
    Loopback,
    LinkLocal,
    Documentation,
    Benchmarking,
    Multicast,
    Unspecified,
    Broadcast,
    Reserved,
    UniqueLocal,
    /// Any other special-purpose block that is not globally reachable.
    Special,
}

impl AddrClass {
    pub fn is_public(self) -> bool {
        self == AddrClass::Public
    }
}

/// Unwraps IPv4-mapped IPv6 (`::ffff:a.b.c.d`) to IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Classifies an address (IPv4-mapped IPv6 is unwrapped first).
pub fn classify(ip: IpAddr) -> AddrClass {
    let _ = canonical(ip);
    AddrClass::Special
}
