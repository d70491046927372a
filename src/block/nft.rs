//! The nftables backend: our own `inet` table, talked to through `nft -j -f -`.
//!
//! The table (named by config, `repute` by default) holds two sets, `block4` (`ipv4_addr`) and
//! `block6` (`ipv6_addr`), both `flags timeout`, and a base chain `input` (and `forward` when
//! configured) whose rules drop packets whose source is in either set. [`Nftables::ensure`]
//! sends `add table/set/chain` (no-ops when present), then flushes and refills our own chains
//! in the same transaction, so it is idempotent and never touches anyone else's rules.
//!
//! Each `nft` run costs a process, so the backend remembers what its last listing showed:
//! whether the table was complete (then `ensure` has nothing to do) and which addresses were
//! in the sets (then `add` knows whether it renews or adds, without listing again). The
//! callers hold the state's change lock between the listing and the change, and every change
//! that guesses wrong falls back (a renewal of an address that has since expired becomes a
//! plain add).
//!
//! We build the JSON with serde rather than the `nftables` crate's typed schema: the few
//! commands we need are short, and parsing `nft -j list` output by hand lets us read each
//! element's `expires` whatever shape the element takes.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
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
#[derive(Debug)]
pub struct Nftables {
    table: String,
    forward: bool,
    /// What the last listing (or our own changes since) showed, if anything.
    seen: Mutex<Option<Seen>>,
}

/// The table as this process last saw it.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// Table, sets, chains and drop rules all as `ensure` makes them.
    complete: bool,
    addresses: HashSet<IpAddr>,
}

impl Nftables {
    pub fn new(settings: &BlockSettings) -> Self {
        Nftables {
            table: settings.table.clone(),
            forward: settings.forward,
            seen: Mutex::new(None),
        }
    }

    /// Whether a listing shows the table exactly as `ensure` would leave it (extra rules of
    /// ours aside): both sets with timeouts, each wanted chain hooked with both drop rules,
    /// and no forward chain when it is not wanted.
    fn is_complete(&self, objects: &[Value]) -> bool {
        let set_ok = |name: &str, kind: &str| {
            objects.iter().filter_map(|o| o.get("set")).any(|set| {
                set["name"] == name
                    && set["type"] == kind
                    && set["flags"]
                        .as_array()
                        .is_some_and(|f| f.iter().any(|x| x == "timeout"))
            })
        };
        let chain_ok = |name: &str| {
            let wanted = self.chain(name);
            let hooked = objects.iter().filter_map(|o| o.get("chain")).any(|c| {
                c["name"] == name
                    && ["type", "hook", "prio", "policy"]
                        .iter()
                        .all(|k| c[*k] == wanted["chain"][*k])
            });
            let has_rule = |rule: Value| {
                objects
                    .iter()
                    .filter_map(|o| o.get("rule"))
                    .any(|r| r["chain"] == name && r["expr"] == rule["rule"]["expr"])
            };
            hooked
                && has_rule(self.drop_rule(name, "ip", SET4))
                && has_rule(self.drop_rule(name, "ip6", SET6))
        };
        let forward_present = objects
            .iter()
            .filter_map(|o| o.get("chain"))
            .any(|c| c["name"] == "forward");
        set_ok(SET4, "ipv4_addr")
            && set_ok(SET6, "ipv6_addr")
            && chain_ok("input")
            && if self.forward {
                chain_ok("forward")
            } else {
                !forward_present
            }
    }

    /// The last listing as remembered. A thread that panicked while holding it left at worst
    /// a stale cache, which the next listing replaces: poisoning is ignored.
    fn seen(&self) -> MutexGuard<'_, Option<Seen>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the last listing had `ip`; `None` when nothing was listed yet.
    fn seen_holds(&self, ip: IpAddr) -> Option<bool> {
        self.seen().as_ref().map(|s| s.addresses.contains(&ip))
    }

    fn note(&self, update: impl FnOnce(&mut Seen)) {
        if let Some(seen) = self.seen().as_mut() {
            update(seen);
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
        if self.seen().as_ref().is_some_and(|s| s.complete) {
            return Ok(());
        }
        let mut cmds = vec![
            json!({ "add": { "table": { "family": "inet", "name": self.table } } }),
            json!({ "add": self.set(SET4, "ipv4_addr") }),
            json!({ "add": self.set(SET6, "ipv6_addr") }),
        ];
        cmds.extend(self.chain_commands("input", true));
        cmds.extend(self.chain_commands("forward", self.forward));
        self.apply(cmds, &format!("creating table inet {}", self.table))?;
        self.note(|s| s.complete = true);
        Ok(())
    }

    fn add(&self, ip: IpAddr, timeout: Duration) -> Result<(), BlockError> {
        // `add element` leaves an existing element's timeout alone; delete then add, in one
        // transaction, renews it.
        let action = format!("adding {ip}");
        // Whether it is there comes from the last listing (the caller's, under the change
        // lock); with none, try a renewal and fall back.
        let add = json!({ "add": self.element(ip, Some(timeout)) });
        let done = if self.seen_holds(ip) == Some(false) {
            self.apply(vec![add], &action)
        } else {
            let renew = vec![json!({ "delete": self.element(ip, None) }), add.clone()];
            match self.apply(renew, &action) {
                // It expired (or another process removed it) since we listed: a plain add.
                Err(BlockError::Tool { .. }) => self.apply(vec![add], &action),
                done => done,
            }
        };
        done?;
        self.note(|s| {
            s.addresses.insert(ip);
        });
        Ok(())
    }

    fn del(&self, ip: IpAddr) -> Result<bool, BlockError> {
        if !self.list()?.iter().any(|e| e.ip == ip) {
            return Ok(false);
        }
        self.apply(
            vec![json!({ "delete": self.element(ip, None) })],
            &format!("deleting {ip}"),
        )?;
        self.note(|s| {
            s.addresses.remove(&ip);
        });
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
            Ok(ran) => {
                let (entries, complete) = self.parse_table(&ran.stdout)?;
                self.remember(&entries, complete);
                Ok(entries)
            }
            Err(BlockError::Tool { detail, .. })
                if detail.contains("No such file or directory") =>
            {
                self.remember(&[], false);
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    fn flush(&self) -> Result<(), BlockError> {
        // The caller has usually just listed (under the change lock): no second listing.
        let known_empty = self.seen().as_ref().map(|s| s.addresses.is_empty());
        let empty = match known_empty {
            Some(empty) => empty,
            None => self.list()?.is_empty(),
        };
        if empty {
            return Ok(());
        }
        let set_ref = |name: &str| json!({ "flush": { "set": { "family": "inet", "table": self.table, "name": name } } });
        self.apply(vec![set_ref(SET4), set_ref(SET6)], "flushing the sets")?;
        self.note(|s| s.addresses.clear());
        Ok(())
    }
}

impl Nftables {
    /// Deletes our table (its sets, elements, chains and rules, nothing outside it); false
    /// when there was none.
    pub fn teardown(&self) -> Result<bool, BlockError> {
        let args = ["-j", "list", "table", "inet", self.table.as_str()];
        match run(
            NFT,
            &args,
            None,
            &format!("listing table inet {}", self.table),
        ) {
            Ok(_) => {}
            Err(BlockError::Tool { detail, .. })
                if detail.contains("No such file or directory") =>
            {
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
        let delete = json!({ "delete": { "table": { "family": "inet", "name": self.table } } });
        self.apply(vec![delete], &format!("deleting table inet {}", self.table))?;
        self.remember(&[], false);
        Ok(true)
    }

    /// The elements of our sets, and whether the table is complete.
    fn parse_table(&self, stdout: &str) -> Result<(Vec<KernelEntry>, bool), BlockError> {
        let entries = parse_listing(stdout)?;
        let doc: Value = serde_json::from_str(stdout).unwrap_or_default();
        let complete = doc["nftables"]
            .as_array()
            .is_some_and(|objects| self.is_complete(objects));
        Ok((entries, complete))
    }

    fn remember(&self, entries: &[KernelEntry], complete: bool) {
        *self.seen() = Some(Seen {
            complete,
            addresses: entries.iter().map(|e| e.ip).collect(),
        });
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
            seen: Mutex::new(None),
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

    /// `nft -j list table inet repute` (nft 1.0.6) after `ensure` without forward.
    const COMPLETE: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
      {"table": {"family": "inet", "name": "repute", "handle": 1}},
      {"set": {"family": "inet", "name": "block4", "table": "repute", "type": "ipv4_addr",
        "handle": 1, "flags": ["timeout"], "elem": ["45.155.205.233"]}},
      {"set": {"family": "inet", "name": "block6", "table": "repute", "type": "ipv6_addr",
        "handle": 2, "flags": ["timeout"]}},
      {"chain": {"family": "inet", "table": "repute", "name": "input", "handle": 3,
        "type": "filter", "hook": "input", "prio": -10, "policy": "accept"}},
      {"rule": {"family": "inet", "table": "repute", "chain": "input", "handle": 4, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
          "right": "@block4"}}, {"drop": null}]}},
      {"rule": {"family": "inet", "table": "repute", "chain": "input", "handle": 5, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}},
          "right": "@block6"}}, {"drop": null}]}}]}"#;

    #[test]
    fn a_complete_table_needs_no_ensure_and_a_damaged_one_does() {
        let complete =
            |nft: &Nftables, text: &str| nft.parse_table(text).map(|(_, c)| c).unwrap_or(false);
        assert!(complete(&backend(false), COMPLETE));
        // Forward wanted but missing.
        assert!(!complete(&backend(true), COMPLETE));
        // A drop rule gone.
        let no_v6_rule = COMPLETE.replace("\"right\": \"@block6\"", "\"right\": \"@other\"");
        assert!(!complete(&backend(false), &no_v6_rule));
        // The set lost its timeout flag.
        let no_timeout = COMPLETE.replacen("\"flags\": [\"timeout\"]", "\"flags\": []", 1);
        assert!(!complete(&backend(false), &no_timeout));
        // The chain unhooked from input (a regular chain).
        let regular = COMPLETE.replace("\"hook\": \"input\", ", "");
        assert!(!complete(&backend(false), &regular));
    }

    #[test]
    fn listing_is_remembered_for_add_and_ensure() {
        let nft = backend(false);
        let (entries, complete) = nft.parse_table(COMPLETE).unwrap_or_default();
        nft.remember(&entries, complete);
        let ip: IpAddr = "45.155.205.233".parse().unwrap_or(IpAddr::from([0u8; 4]));
        assert_eq!(nft.seen_holds(ip), Some(true));
        assert_eq!(nft.seen_holds(IpAddr::from([8, 8, 8, 8])), Some(false));
        assert!(nft.seen().as_ref().is_some_and(|s| s.complete));
        assert_eq!(backend(false).seen_holds(ip), None);
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
