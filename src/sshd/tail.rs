//! The address tails sshd appends to its messages, read from the right.
//!
//! sshd writes the client address after every client-controlled field (`auth.c`
//! `"… from %.200s port %d ssh2%s%s"`, `packet.c` connection ids `"%s%s%s port %d"`), so
//! these helpers parse tails anchored at the end of the message and never look into what
//! comes before. Addresses go through `std::net::IpAddr`'s parser after stripping an
//! interface `%zone`; IPv4-mapped IPv6 is unwrapped to IPv4; host names (UseDNS) are kept as
//! text but give no address.

use std::net::{IpAddr, Ipv4Addr};

use super::envelope::parse_u32;
use super::lit;

/// Where the client is, as sshd wrote it: the host token (an address or a DNS name), its
/// parsed address when it is one, and the port when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer<'a> {
    pub host: &'a str,
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
}

impl<'a> Peer<'a> {
    pub fn new(host: &'a str, port: Option<u16>) -> Self {
        Peer {
            host,
            ip: parse_ip(host),
            port,
        }
    }
}

/// An address as sshd prints it: IPv4, IPv6 with an optional `%zone`, IPv4-mapped unwrapped.
pub fn parse_ip(token: &str) -> Option<IpAddr> {
    let first = *token.as_bytes().first()?;
    // Cheap rejection of host names before the std parser.
    if !(first.is_ascii_hexdigit() || first == b':') {
        return None;
    }
    if let Some(v4) = dotted_quad(token.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    let bare = match token.find('%') {
        Some(i) => &token[..i],
        None => token,
    };
    let ip: IpAddr = bare.parse().ok()?;
    if bare.len() != token.len() && ip.is_ipv4() {
        return None;
    }
    Some(ip.to_canonical())
}

/// The common case, IPv4 in dotted-quad form, without the general parser: four decimal
/// parts of 0–255 and, like `std`, no leading zeros (`010` could mean octal). `None` for
/// anything else, which then goes to the `std` parser.
fn dotted_quad(b: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let (mut part, mut value, mut digits) = (0usize, 0u32, 0u32);
    for &c in b {
        match c {
            b'.' if digits > 0 && part < 3 => {
                octets[part] = value as u8;
                (part, value, digits) = (part + 1, 0, 0);
            }
            b'0'..=b'9' if !(digits > 0 && value == 0) => {
                value = value * 10 + u32::from(c - b'0');
                digits += 1;
                if value > 255 {
                    return None;
                }
            }
            _ => return None,
        }
    }
    if part != 3 || digits == 0 {
        return None;
    }
    octets[3] = value as u8;
    Some(Ipv4Addr::from(octets))
}

/// A port number: 1–5 ASCII digits up to 65535.
pub fn parse_port(s: &str) -> Option<u16> {
    if s.len() > 5 {
        return None;
    }
    u16::try_from(parse_u32(s)?).ok()
}

/// `HOST` or `HOST port N`, the whole of `s`. The host is one token.
pub fn host_port(s: &str) -> Option<Peer<'_>> {
    if let Some(i) = lit::rfind(s, " port ") {
        let port = parse_port(&s[i + 6..])?;
        let host = &s[..i];
        return is_token(host).then(|| Peer::new(host, Some(port)));
    }
    is_token(s).then(|| Peer::new(s, None))
}

/// `PREAMBLE HOST port N` or `PREAMBLE HOST` (old sshd): the host is the last token, the
/// preamble (a `… user NAME` or nothing) is everything before it.
pub fn preamble_host_port(s: &str) -> Option<(&str, Peer<'_>)> {
    let (head, port) = match lit::rfind(s, " port ") {
        Some(i) => match parse_port(&s[i + 6..]) {
            Some(p) => (&s[..i], Some(p)),
            None => (s, None),
        },
        None => (s, None),
    };
    let (preamble, host) = match head.rfind(' ') {
        Some(i) => (&head[..i], &head[i + 1..]),
        None => ("", head),
    };
    if host.is_empty() {
        return None;
    }
    Some((preamble, Peer::new(host, port)))
}

/// The rightmost ` from X` of `s` whose tail `X` satisfies `tail`; the text before that
/// ` from ` (the client-controlled part) is returned with it.
pub fn rightmost_from<'a, T>(
    s: &'a str,
    mut tail: impl FnMut(&'a str) -> Option<T>,
) -> Option<(&'a str, T)> {
    let mut end = s.len();
    while let Some(i) = lit::rfind(&s[..end], " from ") {
        if let Some(t) = tail(&s[i + 6..]) {
            return Some((&s[..i], t));
        }
        end = i;
    }
    None
}

/// A non-empty run without spaces.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && !s.as_bytes().contains(&b' ')
}

/// The connection-id preamble sshd puts before an address: nothing, `user U`,
/// `invalid user U` or `authenticating user U` (OpenSSH `auth2.c` `"%suser %s"`). Returns
/// the user and whether it was an invalid one; anything else is not sshd's text.
pub fn preamble_user(preamble: &str) -> Option<(Option<&str>, Preamble)> {
    if preamble.is_empty() {
        return Some((None, Preamble::None));
    }
    for (prefix, kind) in [
        ("invalid user ", Preamble::Invalid),
        ("authenticating user ", Preamble::Authenticating),
        ("user ", Preamble::User),
    ] {
        if let Some(user) = preamble.strip_prefix(prefix) {
            return Some((Some(user), kind));
        }
        // An empty user name leaves `invalid user` with no trailing space.
        if preamble == prefix.trim_end() {
            return Some((Some(""), kind));
        }
    }
    None
}

/// Who a connection-id preamble names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preamble {
    None,
    User,
    Invalid,
    Authenticating,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_forms() {
        assert_eq!(parse_ip("192.0.2.1"), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(
            parse_ip("2001:db8::1%eth0"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            parse_ip("::ffff:192.0.2.1"),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(parse_ip("192.0.2.1%eth0"), None);
        assert_eq!(parse_ip("example.com"), None);
        assert_eq!(parse_ip("192.0.2.256"), None);
        assert_eq!(parse_ip("192.030.0.6"), None);
        assert_eq!(parse_ip(""), None);
    }

    proptest::proptest! {
        #[test]
        fn dotted_quad_agrees_with_std(s in "[0-9.]{0,17}") {
            let std = s.parse::<Ipv4Addr>().ok();
            proptest::prop_assert_eq!(dotted_quad(s.as_bytes()), std, "{}", s);
        }
    }

    #[test]
    fn host_port_is_whole_tail() {
        let p = host_port("192.0.2.1 port 22").unwrap();
        assert_eq!((p.host, p.port), ("192.0.2.1", Some(22)));
        assert_eq!(host_port("192.0.2.1").unwrap().port, None);
        assert!(host_port("192.0.2.1 port 70000").is_none());
        assert!(host_port("x 192.0.2.1 port 1").is_none());
        assert!(host_port("").is_none());
    }

    #[test]
    fn rightmost_from_skips_bad_tails() {
        let s = "x from 198.51.100.7 port 22 from 203.0.113.50 port 4242";
        let (head, p) = rightmost_from(s, host_port).unwrap();
        assert_eq!(head, "x from 198.51.100.7 port 22");
        assert_eq!(p.host, "203.0.113.50");
        let (_, p) = rightmost_from("a from 192.0.2.1 from bad tail", |t| {
            t.strip_suffix(" from bad tail").and_then(host_port)
        })
        .unwrap();
        assert_eq!(p.host, "192.0.2.1");
    }

    #[test]
    fn preambles() {
        assert_eq!(preamble_user(""), Some((None, Preamble::None)));
        assert_eq!(
            preamble_user("invalid user a b"),
            Some((Some("a b"), Preamble::Invalid))
        );
        assert_eq!(
            preamble_user("invalid user "),
            Some((Some(""), Preamble::Invalid))
        );
        assert_eq!(
            preamble_user("invalid user"),
            Some((Some(""), Preamble::Invalid))
        );
        assert_eq!(
            preamble_user("user alice"),
            Some((Some("alice"), Preamble::User))
        );
        assert_eq!(preamble_user("totobad user ftp"), None);
    }
}
