//! The checks that stand between an address and the firewall.
//!
//! A block that cuts off the host's own administrators is worse than the attack, so an address
//! is refused, unless forced, when it is not public (private, loopback, link-local, …: blocking
//! them breaks the host or the LAN and they cannot be the Internet attacker anyway), when it is
//! on the configured allowlist, when it is one of the host's own addresses (`getifaddrs`, so
//! every interface and both families, no subprocess), or when it is the peer of the SSH session
//! running the command (`SSH_CONNECTION` / `SSH_CLIENT`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::addr::{AddrClass, canonical};

/// Why an address was not blocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotPublic(AddrClass),
    Allowlisted(IpNet),
    OwnAddress,
    SshSession(&'static str),
    /// The kernel set already holds `max` addresses.
    Full {
        max: usize,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotPublic(class) => write!(f, "not a public address ({})", class.as_str()),
            Refusal::Allowlisted(net) => write!(f, "on the allowlist ({net})"),
            Refusal::OwnAddress => f.write_str("one of this host's own addresses"),
            Refusal::SshSession(var) => write!(
                f,
                "the address of the SSH session running this command ({var})"
            ),
            Refusal::Full { max } => write!(
                f,
                "{max} addresses are already blocked (block.max_entries); unblock some or raise the limit"
            ),
        }
    }
}

impl Refusal {
    /// Whether `--force` overrides it: every address check does, the entry limit does not.
    pub fn is_forceable(&self) -> bool {
        !matches!(self, Refusal::Full { .. })
    }
}

/// What the checks compare an address with.
#[derive(Debug, Clone, Default)]
pub struct SafetyPolicy {
    pub allowlist: Vec<IpNet>,
    pub host_addresses: Vec<IpAddr>,
    /// Peers of the SSH session, with the variable each came from.
    pub session_peers: Vec<(IpAddr, &'static str)>,
}

impl SafetyPolicy {
    /// The policy for this process: the given allowlist, the host's addresses and the SSH
    /// session from the environment. Failing to list interfaces is an error: without the
    /// list, the own-address check would silently pass.
    pub fn for_this_host(allowlist: Vec<IpNet>) -> std::io::Result<Self> {
        Ok(SafetyPolicy {
            allowlist,
            host_addresses: host_addresses()?,
            session_peers: session_peers(|name| std::env::var(name).ok()),
        })
    }

    /// `Ok` when `ip` may be blocked; the first reason it may not, otherwise.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ip = crate::addr::public(ip).map_err(Refusal::NotPublic)?;
        if let Some(net) = self.allowlist.iter().find(|n| n.contains(&ip)) {
            return Err(Refusal::Allowlisted(*net));
        }
        if self.host_addresses.iter().any(|a| canonical(*a) == ip) {
            return Err(Refusal::OwnAddress);
        }
        if let Some((_, var)) = self.session_peers.iter().find(|(a, _)| canonical(*a) == ip) {
            return Err(Refusal::SshSession(var));
        }
        Ok(())
    }
}

/// The client address of the SSH session, from `SSH_CONNECTION` ("client port server port")
/// and `SSH_CLIENT` ("client port serverport"); `env` reads a variable.
pub fn session_peers(env: impl Fn(&str) -> Option<String>) -> Vec<(IpAddr, &'static str)> {
    ["SSH_CONNECTION", "SSH_CLIENT"]
        .into_iter()
        .filter_map(|var| {
            let value = env(var)?;
            let ip = value.split_whitespace().next()?.parse().ok()?;
            Some((ip, var))
        })
        .collect()
}

/// Every address on every interface of this host (its network namespace), via `getifaddrs`.
pub fn host_addresses() -> std::io::Result<Vec<IpAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we own until freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut found = Vec::new();
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cursor };
        if let Some(ip) = unsafe { sockaddr_ip(ifa.ifa_addr) } {
            found.push(ip);
        }
        cursor = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once; no reference outlives this.
    unsafe { libc::freeifaddrs(head) };
    Ok(found)
}

/// The address in a `sockaddr` of family `AF_INET` or `AF_INET6`.
///
/// # Safety
/// `addr` is null or points to a valid `sockaddr` of the size its family implies.
unsafe fn sockaddr_ip(addr: *const libc::sockaddr) -> Option<IpAddr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: non-null and valid per the function contract; the family selects the layout.
    unsafe {
        match i32::from((*addr).sa_family) {
            libc::AF_INET => {
                let sin = &*(addr as *const libc::sockaddr_in);
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))))
            }
            libc::AF_INET6 => {
                let sin6 = &*(addr as *const libc::sockaddr_in6);
                Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_variables_give_the_client_address() {
        let env = |name: &str| match name {
            "SSH_CONNECTION" => Some("2001:db8::7 51234 2001:db8::1 22".to_string()),
            "SSH_CLIENT" => Some("203.0.113.5 51234 22".to_string()),
            _ => None,
        };
        let peers = session_peers(env);
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0].0.to_string(), "2001:db8::7");
        assert_eq!(peers[0].1, "SSH_CONNECTION");
        assert_eq!(peers[1].0.to_string(), "203.0.113.5");
        assert!(session_peers(|_| Some("garbage".into())).is_empty());
        assert!(session_peers(|_| None).is_empty());
    }

    #[test]
    fn host_addresses_include_loopback() {
        // Every namespace has `lo`, even a fresh one where it is down.
        let found = host_addresses().unwrap_or_default();
        assert!(
            found.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{found:?}"
        );
    }

    #[test]
    fn loopback_is_refused_as_not_public() {
        let policy = SafetyPolicy::default();
        let refusal = policy.check(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(matches!(refusal, Err(Refusal::NotPublic(_))));
        let text = refusal.err().map(|r| r.to_string()).unwrap_or_default();
        assert!(text.starts_with("not a public address ("), "{text}");
        assert_eq!(text, "not a public address (loopback)");
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn each_check_refuses_with_its_reason() {
        let policy = SafetyPolicy {
            allowlist: vec!["45.155.0.0/16".parse().unwrap_or(IpNet::default())],
            host_addresses: vec![ip("81.2.69.160")],
            session_peers: vec![(ip("2a00:1450:4001::5"), "SSH_CLIENT")],
        };
        assert_eq!(policy.check(ip("8.8.4.4")), Ok(()));
        assert_eq!(
            policy.check(ip("192.168.1.9")),
            Err(Refusal::NotPublic(AddrClass::Private))
        );
        assert!(matches!(
            policy.check(ip("45.155.205.233")),
            Err(Refusal::Allowlisted(_))
        ));
        assert_eq!(policy.check(ip("81.2.69.160")), Err(Refusal::OwnAddress));
        // IPv4-mapped forms are the same address.
        assert_eq!(
            policy.check(ip("::ffff:81.2.69.160")),
            Err(Refusal::OwnAddress)
        );
        assert_eq!(
            policy.check(ip("2a00:1450:4001::5")),
            Err(Refusal::SshSession("SSH_CLIENT"))
        );
        let text = policy
            .check(ip("45.155.205.233"))
            .err()
            .map(|r| r.to_string());
        assert_eq!(text.as_deref(), Some("on the allowlist (45.155.0.0/16)"));
    }

    #[test]
    fn full_message_names_the_setting() {
        let text = Refusal::Full { max: 3 }.to_string();
        assert_eq!(
            text,
            "3 addresses are already blocked (block.max_entries); unblock some or raise the limit"
        );
    }
}
