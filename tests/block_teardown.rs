//! `repute block teardown` in a network namespace each test creates: our table, sets and rules
//! go, with the block records; another table, set or rule in the same namespace stays.

mod block_support;
mod need;

use block_support::{Netns, listed, stderr, stdout};

const V4: &str = "45.155.205.233";
const V6: &str = "2a06:4880::5";

#[test]
fn teardown_removes_our_nft_table_and_records_and_nothing_else() {
    let Some(netns) = Netns::new() else {
        return;
    };
    // Someone else's table, with a set and a rule of its own.
    netns.ok(&["nft", "add", "table", "inet", "other"]);
    netns.ok(&[
        "nft",
        "add",
        "set",
        "inet",
        "other",
        "keep",
        "{ type ipv4_addr; }",
    ]);
    netns.ok(&[
        "nft",
        "add",
        "chain",
        "inet",
        "other",
        "input",
        "{ type filter hook input priority 0; policy accept; }",
    ]);
    netns.ok(&[
        "nft",
        "add",
        "rule",
        "inet",
        "other",
        "input",
        "ip saddr @keep drop",
    ]);
    for ip in [V4, V6] {
        let out = netns.run(&["block", "add", ip, "--for", "1h"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }

    let out = netns.run(&["block", "teardown"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "removed nftables table inet repute\nforgot 2 block records\n"
    );
    let tables = netns.ok(&["nft", "list", "tables"]);
    assert_eq!(tables.trim(), "table inet other", "only ours went");
    let other = netns.ok(&["nft", "list", "table", "inet", "other"]);
    assert!(other.contains("ip saddr @keep drop"), "{other}");
    // The records went too: `list` restores nothing.
    assert!(listed(&netns).is_empty());
    assert!(netns.nft_elements("repute").is_empty());

    let again = netns.run(&["block", "teardown"]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stdout(&again).starts_with("nothing to remove"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn teardown_removes_our_ipsets_and_their_rules_and_nothing_else() {
    let Some(netns) = Netns::needing(&["ipset", "iptables", "ip6tables"]) else {
        return;
    };
    netns.write_config("[block]\nbackend = \"ipset\"\nforward = true\n");
    // Someone else's set and rule.
    netns.ok(&["ipset", "create", "theirs", "hash:ip"]);
    netns.ok(&[
        "iptables",
        "-w",
        "-A",
        "INPUT",
        "-m",
        "set",
        "--match-set",
        "theirs",
        "src",
        "-j",
        "DROP",
    ]);
    for ip in [V4, V6] {
        let out = netns.run(&["block", "add", ip, "--for", "1h"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }

    let out = netns.run(&["block", "teardown"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "removed ipset repute-v4 and its iptables rules\n\
         removed ipset repute-v6 and its iptables rules\n\
         forgot 2 block records\n"
    );
    let sets = netns.ok(&["ipset", "list", "-n"]);
    assert_eq!(sets.trim(), "theirs");
    let rules4 = netns.ok(&["iptables", "-S"]);
    let rules6 = netns.ok(&["ip6tables", "-S"]);
    assert!(
        !rules4.contains("repute") && !rules6.contains("repute"),
        "{rules4}{rules6}"
    );
    assert!(
        rules4.contains("--match-set theirs src -j DROP"),
        "{rules4}"
    );
    assert!(listed(&netns).is_empty());
}
