//! The nftables backend: our own `inet` table, talked to through `nft -j -f -`.
//!
//! The table (named by config, `repute` by default) holds two sets, `block4` (`ipv4_addr`) and
//! `block6` (`ipv6_addr`), both `flags timeout`, and a base chain `input` (and `forward` when
//! configured) whose rules drop packets whose source is in either set. [`Nftables::ensure`]
//! sends `add table/set/chain` (no-ops when present), then flushes and refills our own chains
//! in the same transaction, so it is idempotent and never touches anyone else's rules.
//!
//! We build the JSON with serde rather than the `nftables` crate's typed schema: the few
//! commands we need are short, and parsing `nft -j list` output by hand lets us read each
//! element's `expires` whatever shape the element takes.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Value, json};

use super::command::run;
use super::{BlockError, Firewall, KernelEntry};
use crate::config::BlockSettings;

const NFT: &str = "nft";
const SET4: &str = "block4";
const SET6: &str = "block6";
/// Before the usual `filter` priority (0), so our drop is seen early.
const PRIORITY: i32 = -10;

/// The nftables backend.
#[derive(Debug, Clone)]
pub struct Nftables {
    table: String,
    forward: bool,
}

impl Nftables {
    pub fn new(settings: &BlockSettings) -> Self {
        Nftables {
            table: settings.table.clone(),
            forward: settings.forward,
        }
    }

    fn apply(&self, commands: Vec<Value>, action: &str) -> Result<(), BlockError> {
        let batch = json!({ "nftables": commands }).to_string();
        run(NFT, &["-j", "-f", "-"], Some(batch.as_bytes()), action)?;
        Ok(())
    }

    fn set_of(ip: IpAddr) -> &'static str {
        if ip.is_ipv4() { SET4 } else { SET6 }
    }

    fn element(&self, ip: IpAddr, timeout: Option<Duration>) -> Value {
        let elem = match timeout {
            Some(t) => json!([{ "elem": { "val": ip.to_string(), "timeout": t.as_secs() } }]),
            None => json!([ip.to_string()]),
        };
        json!({ "element": {
            "family": "inet", "table": self.table, "name": Self::set_of(ip), "elem": elem
        }})
    }

    fn set(&self, name: &str, kind: &str) -> Value {
        json!({ "set": {
            "family": "inet", "table": self.table, "name": name, "type": kind, "flags": ["timeout"]
        }})
    }

    fn chain(&self, name: &str) -> Value {
        json!({ "chain": {
            "family": "inet", "table": self.table, "name": name,
            "type": "filter", "hook": name, "prio": PRIORITY, "policy": "accept"
        }})
    }

    fn chain_ref(&self, name: &str) -> Value {
        json!({ "chain": { "family": "inet", "table": self.table, "name": name } })
    }

    fn drop_rule(&self, chain: &str, protocol: &str, set: &str) -> Value {
        json!({ "rule": {
            "family": "inet", "table": self.table, "chain": chain,
            "expr": [
                { "match": {
                    "op": "==",
                    "left": { "payload": { "protocol": protocol, "field": "saddr" } },
                    "right": format!("@{set}")
                }},
                { "drop": null }
            ]
        }})
    }

    /// `add` + `flush` + rules for a chain we want, `add` + `flush` + `delete` for one we
    /// do not (so turning `forward` off removes the chain without failing when it is absent).
    fn chain_commands(&self, name: &str, wanted: bool) -> Vec<Value> {
        let mut cmds = vec![
            json!({ "add": self.chain(name) }),
            json!({ "flush": self.chain_ref(name) }),
        ];
        if wanted {
            cmds.push(json!({ "add": self.drop_rule(name, "ip", SET4) }));
            cmds.push(json!({ "add": self.drop_rule(name, "ip6", SET6) }));
        } else {
            cmds.push(json!({ "delete": self.chain_ref(name) }));
        }
        cmds
    }
}

impl Firewall for Nftables {
    fn name(&self) -> &'static str {
        "nftables"
    }

    fn ensure(&self) -> Result<(), BlockError> {
        let mut cmds = vec![
            json!({ "add": { "table": { "family": "inet", "name": self.table } } }),
            json!({ "add": self.set(SET4, "ipv4_addr") }),
            json!({ "add": self.set(SET6, "ipv6_addr") }),
        ];
        cmds.extend(self.chain_commands("input", true));
        cmds.extend(self.chain_commands("forward", self.forward));
        self.apply(cmds, &format!("creating table inet {}", self.table))
    }

    fn add(&self, ip: IpAddr, timeout: Duration) -> Result<(), BlockError> {
        // `add element` leaves an existing element's timeout alone; delete then add, in one
        // transaction, renews it.
        let action = format!("adding {ip}");
        let add = json!({ "add": self.element(ip, Some(timeout)) });
        if !self.list()?.iter().any(|e| e.ip == ip) {
            return self.apply(vec![add], &action);
        }
        let renew = vec![json!({ "delete": self.element(ip, None) }), add.clone()];
        match self.apply(renew, &action) {
            // It expired (or another process removed it) since we listed: a plain add.
            Err(BlockError::Tool { .. }) => self.apply(vec![add], &action),
            done => done,
        }
    }

    fn del(&self, ip: IpAddr) -> Result<bool, BlockError> {
        if !self.list()?.iter().any(|e| e.ip == ip) {
            return Ok(false);
        }
        self.apply(
            vec![json!({ "delete": self.element(ip, None) })],
            &format!("deleting {ip}"),
        )?;
        Ok(true)
    }

    fn list(&self) -> Result<Vec<KernelEntry>, BlockError> {
        let args = ["-j", "list", "table", "inet", self.table.as_str()];
        match run(
            NFT,
            &args,
            None,
            &format!("listing table inet {}", self.table),
        ) {
            Ok(ran) => parse_listing(&ran.stdout),
            Err(BlockError::Tool { detail, .. })
                if detail.contains("No such file or directory") =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    fn flush(&self) -> Result<(), BlockError> {
        if self.list()?.is_empty() {
            return Ok(());
        }
        let set_ref = |name: &str| json!({ "flush": { "set": { "family": "inet", "table": self.table, "name": name } } });
        self.apply(vec![set_ref(SET4), set_ref(SET6)], "flushing the sets")
    }
}

/// Elements of our two sets in `nft -j list table` output.
fn parse_listing(stdout: &str) -> Result<Vec<KernelEntry>, BlockError> {
    let bad = |detail: String| BlockError::Output {
        program: NFT.into(),
        detail,
    };
    let doc: Value = serde_json::from_str(stdout).map_err(|e| bad(e.to_string()))?;
    let objects = doc["nftables"]
        .as_array()
        .ok_or_else(|| bad("no \"nftables\" array".into()))?;
    let mut entries = Vec::new();
    for set in objects.iter().filter_map(|o| o.get("set")) {
        if !matches!(set["name"].as_str(), Some(SET4 | SET6)) {
            continue;
        }
        for elem in set["elem"].as_array().into_iter().flatten() {
            entries.push(parse_element(elem).ok_or_else(|| bad(format!("element {elem}")))?);
        }
    }
    Ok(entries)
}

/// An element is either a bare address string or `{"elem":{"val":…,"timeout":…,"expires":…}}`.
fn parse_element(elem: &Value) -> Option<KernelEntry> {
    let (val, expires) = match elem {
        Value::String(s) => (s.as_str(), None),
        Value::Object(_) => (
            elem["elem"]["val"].as_str()?,
            elem["elem"]["expires"].as_u64(),
        ),
        _ => return None,
    };
    Some(KernelEntry {
        ip: val.parse().ok()?,
        remaining: expires.map(Duration::from_secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(forward: bool) -> Nftables {
        Nftables {
            table: "repute".into(),
            forward,
        }
    }

    #[test]
    fn elements_carry_typed_addresses_and_whole_seconds() {
        let ip: IpAddr = "2001:db8::1".parse().unwrap_or(IpAddr::from([0u8; 16]));
        let v = backend(false).element(ip, Some(Duration::from_secs(90)));
        assert_eq!(v["element"]["name"], "block6");
        assert_eq!(v["element"]["elem"][0]["elem"]["val"], "2001:db8::1");
        assert_eq!(v["element"]["elem"][0]["elem"]["timeout"], 90);
    }

    #[test]
    fn forward_chain_is_removed_when_not_wanted() {
        let cmds = backend(false).chain_commands("forward", false);
        assert!(cmds.last().is_some_and(|c| c.get("delete").is_some()));
        let cmds = backend(true).chain_commands("forward", true);
        assert_eq!(cmds.len(), 4);
        assert_eq!(
            cmds[2]["add"]["rule"]["expr"][0]["match"]["right"],
            "@block4"
        );
        assert_eq!(
            cmds[3]["add"]["rule"]["expr"][0]["match"]["right"],
            "@block6"
        );
    }

    #[test]
    fn listing_reads_both_element_shapes_and_ignores_other_sets() {
        let out = r#"{"nftables":[{"metainfo":{"version":"1.0.6"}},
          {"set":{"family":"inet","name":"block4","table":"repute","type":"ipv4_addr",
            "elem":[{"elem":{"val":"203.0.113.9","timeout":100,"expires":99}},"198.51.100.7"]}},
          {"set":{"family":"inet","name":"other","table":"repute","type":"ipv4_addr",
            "elem":["192.0.2.1"]}},
          {"set":{"family":"inet","name":"block6","table":"repute","type":"ipv6_addr"}}]}"#;
        let entries = parse_listing(out).unwrap_or_default();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].ip.to_string(), "203.0.113.9");
        assert_eq!(entries[0].remaining, Some(Duration::from_secs(99)));
        assert_eq!(entries[1].remaining, None);
    }

    #[test]
    fn listing_rejects_garbage() {
        assert!(parse_listing("not json").is_err());
        assert!(
            parse_listing(
                r#"{"nftables":[{"set":{"name":"block4","elem":[{"elem":{"val":"x"}}]}}]}"#
            )
            .is_err()
        );
    }
}
