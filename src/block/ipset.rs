//! The ipset + iptables fallback, for hosts where `nft` is missing.
//!
//! Two `hash:ip` sets (`<table>-v4`, family `inet`; `<table>-v6`, family `inet6`) created with
//! `timeout 0`, which lets every entry carry its own timeout, and one rule per chain
//! (`-m set --match-set <set> src -j DROP`) in iptables and ip6tables, inserted only when
//! `-C` says it is missing. Every tool is spawned with an argument vector.

use std::net::IpAddr;
use std::time::Duration;

use super::command::run;
use super::{BlockError, Firewall, KernelEntry};
use crate::config::BlockSettings;

const IPSET: &str = "ipset";
/// The kernel keeps ipset timeouts in milliseconds in 32 bits: ipset refuses more than this.
pub const MAX_TIMEOUT_SECS: u64 = 2_147_483;

/// The ipset + iptables backend.
#[derive(Debug, Clone)]
pub struct Ipset {
    v4: String,
    v6: String,
    forward: bool,
}

/// One address family: its set, its create arguments and its iptables tool.
struct Family<'a> {
    set: &'a str,
    family: &'static str,
    iptables: &'static str,
}

impl Ipset {
    pub fn new(settings: &BlockSettings) -> Self {
        Ipset {
            v4: format!("{}-v4", settings.table),
            v6: format!("{}-v6", settings.table),
            forward: settings.forward,
        }
    }

    fn families(&self) -> [Family<'_>; 2] {
        [
            Family {
                set: &self.v4,
                family: "inet",
                iptables: "iptables",
            },
            Family {
                set: &self.v6,
                family: "inet6",
                iptables: "ip6tables",
            },
        ]
    }

    fn set_of(&self, ip: IpAddr) -> &str {
        if ip.is_ipv4() { &self.v4 } else { &self.v6 }
    }

    /// Inserts the drop rule into `chain` unless `-C` finds it there already.
    fn ensure_rule(&self, fam: &Family<'_>, chain: &str) -> Result<(), BlockError> {
        if self.rule_present(fam, chain) {
            return Ok(());
        }
        let mut args = vec!["-w", "-I", chain, "1"];
        args.extend(rule_spec(fam.set));
        run(
            fam.iptables,
            &args,
            None,
            &format!("adding the {chain} rule"),
        )?;
        Ok(())
    }

    /// Takes the drop rule out of `chain` (bounded: a rule inserted twice by hand goes too).
    fn remove_rule(&self, fam: &Family<'_>, chain: &str) -> Result<(), BlockError> {
        for _ in 0..8 {
            if !self.rule_present(fam, chain) {
                break;
            }
            let mut args = vec!["-w", "-D", chain];
            args.extend(rule_spec(fam.set));
            run(
                fam.iptables,
                &args,
                None,
                &format!("removing the {chain} rule"),
            )?;
        }
        Ok(())
    }

    fn rule_present(&self, fam: &Family<'_>, chain: &str) -> bool {
        let mut args = vec!["-w", "-C", chain];
        args.extend(rule_spec(fam.set));
        run(fam.iptables, &args, None, "checking a rule").is_ok()
    }

    fn list_set(&self, set: &str) -> Result<Vec<KernelEntry>, BlockError> {
        match run(
            IPSET,
            &["list", set, "-o", "save"],
            None,
            &format!("listing {set}"),
        ) {
            Ok(ran) => parse_save(&ran.stdout),
            Err(BlockError::Tool { detail, .. }) if detail.contains("does not exist") => {
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }
}

impl Ipset {
    /// Removes our drop rules (INPUT and FORWARD, iptables and ip6tables), then destroys our
    /// two sets; nothing else. Returns the sets destroyed.
    pub fn teardown(&self) -> Result<Vec<String>, BlockError> {
        let mut destroyed = Vec::new();
        for fam in self.families() {
            // The rules first: ipset refuses to destroy a set a rule still uses.
            if super::command::in_path(fam.iptables) {
                self.remove_rule(&fam, "INPUT")?;
                self.remove_rule(&fam, "FORWARD")?;
            }
            let exists = run(IPSET, &["list", "-n", fam.set], None, "listing a set").is_ok();
            if exists {
                run(
                    IPSET,
                    &["destroy", fam.set],
                    None,
                    &format!("destroying {}", fam.set),
                )?;
                destroyed.push(fam.set.to_string());
            }
        }
        Ok(destroyed)
    }
}

fn rule_spec(set: &str) -> [&str; 7] {
    ["-m", "set", "--match-set", set, "src", "-j", "DROP"]
}

impl Firewall for Ipset {
    fn name(&self) -> &'static str {
        "ipset"
    }

    fn ensure(&self) -> Result<(), BlockError> {
        for fam in self.families() {
            let args = [
                "create", "-exist", fam.set, "hash:ip", "family", fam.family, "timeout", "0",
            ];
            run(IPSET, &args, None, &format!("creating {}", fam.set))?;
            self.ensure_rule(&fam, "INPUT")?;
            if self.forward {
                self.ensure_rule(&fam, "FORWARD")?;
            } else {
                self.remove_rule(&fam, "FORWARD")?;
            }
        }
        Ok(())
    }

    fn add(&self, ip: IpAddr, timeout: Duration) -> Result<(), BlockError> {
        let secs = timeout.as_secs();
        if secs > MAX_TIMEOUT_SECS {
            return Err(BlockError::TooLong {
                requested: secs,
                max: MAX_TIMEOUT_SECS,
                backend: "ipset",
            });
        }
        // `-exist` turns a re-add into a timeout renewal instead of an error.
        let (ip_text, secs_text) = (ip.to_string(), secs.max(1).to_string());
        let args = [
            "add",
            "-exist",
            self.set_of(ip),
            &ip_text,
            "timeout",
            &secs_text,
        ];
        run(IPSET, &args, None, &format!("adding {ip}"))?;
        Ok(())
    }

    fn del(&self, ip: IpAddr) -> Result<bool, BlockError> {
        if !self.list_set(self.set_of(ip))?.iter().any(|e| e.ip == ip) {
            return Ok(false);
        }
        let ip_text = ip.to_string();
        let args = ["del", "-exist", self.set_of(ip), &ip_text];
        run(IPSET, &args, None, &format!("deleting {ip}"))?;
        Ok(true)
    }

    fn list(&self) -> Result<Vec<KernelEntry>, BlockError> {
        let mut all = self.list_set(&self.v4)?;
        all.extend(self.list_set(&self.v6)?);
        Ok(all)
    }

    fn flush(&self) -> Result<(), BlockError> {
        for fam in self.families() {
            if !self.list_set(fam.set)?.is_empty() {
                run(
                    IPSET,
                    &["flush", fam.set],
                    None,
                    &format!("flushing {}", fam.set),
                )?;
            }
        }
        Ok(())
    }
}

/// Entries from `ipset list <set> -o save`: `add <set> <ip> [timeout <secs>]` lines.
fn parse_save(stdout: &str) -> Result<Vec<KernelEntry>, BlockError> {
    let mut entries = Vec::new();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let ["add", _set, ip, rest @ ..] = words.as_slice() else {
            continue;
        };
        let bad = || BlockError::Output {
            program: IPSET.into(),
            detail: format!("line {line:?}"),
        };
        let ip: IpAddr = ip.parse().map_err(|_| bad())?;
        let remaining = match rest {
            ["timeout", secs, ..] => Some(Duration::from_secs(secs.parse().map_err(|_| bad())?)),
            _ => None,
        };
        entries.push(KernelEntry { ip, remaining });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_output_is_parsed() {
        let out = "create repute-v4 hash:ip family inet hashsize 1024 maxelem 65536 timeout 0\n\
                   add repute-v4 203.0.113.9 timeout 57\n\
                   add repute-v4 198.51.100.7\n";
        let entries = parse_save(out).unwrap_or_default();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].remaining, Some(Duration::from_secs(57)));
        assert_eq!(entries[1].ip.to_string(), "198.51.100.7");
        assert_eq!(entries[1].remaining, None);
        assert!(parse_save("add repute-v4 nonsense timeout 3").is_err());
    }

    #[test]
    fn sets_are_named_after_the_table() {
        let ipset = Ipset::new(&BlockSettings::default());
        assert_eq!(
            ipset.set_of("2001:db8::1".parse().unwrap_or(IpAddr::from([0u8; 4]))),
            "repute-v6"
        );
        assert_eq!(ipset.set_of(IpAddr::from([192, 0, 2, 1])), "repute-v4");
    }

    #[test]
    fn too_long_a_timeout_is_refused_before_any_tool_runs() {
        let ipset = Ipset::new(&BlockSettings::default());
        let err = ipset.add(
            IpAddr::from([192, 0, 2, 1]),
            Duration::from_secs(MAX_TIMEOUT_SECS + 1),
        );
        assert!(matches!(err, Err(BlockError::TooLong { .. })));
    }
}
