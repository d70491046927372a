//! `repute block` with the real `nft`, inside a network namespace each test creates.

mod block_support;
mod need;

use block_support::{Netns, listed, stderr, stdout};

/// Public addresses (not documentation ranges: those are refused as not public). Nothing is
/// ever sent to them; the namespace has no route anywhere.
const V4: &str = "45.155.205.233";
const V4_B: &str = "185.220.101.4";
const V6: &str = "2a06:4880::5";

fn assert_refused(netns: &Netns, args: &[&str], why: &str) {
    let out = netns.run(args);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(why), "{args:?}: {err}");
}

/// The host's own view of our table (run outside any namespace), to show it is never touched.
fn host_table() -> (bool, String) {
    let out = std::process::Command::new("nft")
        .args(["-j", "list", "table", "inet", "repute"])
        .output()
        .expect("nft on the host");
    (out.status.success(), stdout(&out))
}

#[test]
fn add_list_delete_ipv4_and_ipv6() {
    // The namespace first: it skips on a machine without root or nft, where the host's
    // table cannot be read either.
    let Some(netns) = Netns::new() else {
        return;
    };
    let host_before = host_table();
    let out = netns.run(&["block", "add", V4, "--for", "1h", "--reason", "brute force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("blocked {V4} for 1h (nftables)\n"));
    let out = netns.run(&["block", "add", V6, "--for", "10m"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        netns.nft_elements("repute"),
        vec![V6.to_string(), V4.to_string()]
    );

    // The rules really drop from both sets, in the input chain only by default.
    let ruleset = netns.ok(&["nft", "list", "table", "inet", "repute"]);
    assert!(ruleset.contains("ip saddr @block4 drop"), "{ruleset}");
    assert!(ruleset.contains("ip6 saddr @block6 drop"), "{ruleset}");
    assert!(ruleset.contains("hook input"), "{ruleset}");
    assert!(!ruleset.contains("hook forward"), "{ruleset}");

    let entries = listed(&netns);
    assert_eq!(entries.len(), 2);
    let v4 = entries.iter().find(|e| e["ip"] == V4).expect("v4 listed");
    assert_eq!(v4["reason"], "brute force");
    assert_eq!(v4["backend"], "nftables");
    let left = v4["remaining_secs"].as_u64().expect("remaining");
    assert!((3500..=3600).contains(&left), "{left}");
    let v6 = entries.iter().find(|e| e["ip"] == V6).expect("v6 listed");
    assert!(v6["reason"].is_null());
    assert!(v6["remaining_secs"].as_u64().is_some_and(|s| s <= 600));

    let table = stdout(&netns.run(&["block", "list"]));
    assert!(table.starts_with("ADDRESS"), "{table}");
    assert!(table.contains("brute force"), "{table}");

    let out = netns.run(&["block", "del", V4]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(netns.nft_elements("repute"), vec![V6.to_string()]);
    assert_refused(&netns, &["block", "del", V4], "was not blocked");
    let out = netns.run(&["block", "del", V6]);
    assert!(out.status.success());
    assert!(netns.nft_elements("repute").is_empty());
    assert!(listed(&netns).is_empty());
    assert_eq!(
        host_table(),
        host_before,
        "the host's firewall is not touched"
    );
}

#[test]
fn a_two_second_block_really_expires() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let out = netns.run(&["block", "add", V4, "--for", "2s", "--reason", "short"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(netns.nft_elements("repute"), vec![V4.to_string()]);
    // The kernel drops the element by itself: nobody calls repute in between.
    netns.wait_for("the kernel to expire the element", || {
        netns.nft_elements("repute").is_empty()
    });
    // The state forgets it too, and does not put it back.
    assert!(listed(&netns).is_empty());
    assert!(netns.nft_elements("repute").is_empty());
}

#[test]
fn flush_empties_both_sets_and_keeps_the_rules() {
    let Some(netns) = Netns::new() else {
        return;
    };
    for ip in [V4, V4_B, V6] {
        assert!(netns.run(&["block", "add", ip]).status.success());
    }
    assert_eq!(netns.nft_elements("repute").len(), 3);
    let out = netns.run(&["block", "flush"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "unblocked 3 addresses\n");
    assert!(netns.nft_elements("repute").is_empty());
    assert!(listed(&netns).is_empty());
    let ruleset = netns.ok(&["nft", "list", "table", "inet", "repute"]);
    assert!(ruleset.contains("ip saddr @block4 drop"), "{ruleset}");
}

#[test]
fn setup_is_idempotent_and_forward_is_configurable() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let rules = |chain: &str| {
        let out = netns
            .command("nft")
            .args(["-j", "list", "chain", "inet", "repute", chain])
            .output()
            .expect("nft");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        doc["nftables"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|o| o.get("rule").is_some()).count())
    };
    for ip in [V4, V4_B, V4] {
        assert!(netns.run(&["block", "add", ip]).status.success());
    }
    assert_eq!(
        rules("input"),
        2,
        "one rule per family, however often set up"
    );
    assert_eq!(rules("forward"), 0);

    netns.write_config("[block]\nforward = true\n");
    assert!(netns.run(&["block", "add", V6]).status.success());
    assert_eq!(rules("input"), 2);
    assert_eq!(rules("forward"), 2);

    netns.write_config("[block]\nforward = false\n");
    assert!(netns.run(&["block", "add", V6]).status.success());
    assert_eq!(rules("forward"), 0);
    let ruleset = netns.ok(&["nft", "list", "ruleset"]);
    assert!(!ruleset.contains("hook forward"), "{ruleset}");
    // Nothing was lost on the way.
    assert_eq!(netns.nft_elements("repute").len(), 3);
}

#[test]
fn table_name_comes_from_config() {
    let Some(netns) = Netns::new() else {
        return;
    };
    netns.write_config("[block]\ntable = \"guard\"\n");
    assert!(netns.run(&["block", "add", V4]).status.success());
    assert_eq!(netns.nft_elements("guard"), vec![V4.to_string()]);
    assert!(netns.nft_elements("repute").is_empty());
}

#[test]
fn refusals_then_force() {
    let Some(netns) = Netns::new() else {
        return;
    };
    netns.write_config("allowlist = [\"81.2.69.0/24\", \"2a00:1450::/32\"]\n");
    // One of the host's own addresses: a public one, and an IPv6 one, on the namespace's `lo`.
    netns.ok(&["ip", "addr", "add", "93.184.215.14/32", "dev", "lo"]);
    netns.ok(&["ip", "-6", "addr", "add", "2a01:4f8::77/128", "dev", "lo"]);

    assert_refused(
        &netns,
        &["block", "add", "10.1.2.3"],
        "not a public address (private)",
    );
    assert_refused(
        &netns,
        &["block", "add", "127.0.0.1"],
        "not a public address (loopback)",
    );
    assert_refused(&netns, &["block", "add", "fd00::1"], "not a public address");
    assert_refused(
        &netns,
        &["block", "add", "81.2.69.160"],
        "on the allowlist (81.2.69.0/24)",
    );
    assert_refused(
        &netns,
        &["block", "add", "2a00:1450::9"],
        "on the allowlist",
    );
    assert_refused(
        &netns,
        &["block", "add", "93.184.215.14"],
        "this host's own addresses",
    );
    assert_refused(
        &netns,
        &["block", "add", "2a01:4f8::77"],
        "this host's own addresses",
    );

    let ssh = |var: &str, value: &str| {
        let out = netns
            .repute()
            .env(var, value)
            .args(["block", "add", V4_B])
            .output()
            .expect("spawn");
        (out.status.code(), stderr(&out))
    };
    let (code, err) = ssh("SSH_CLIENT", &format!("{V4_B} 52144 22"));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("SSH session running this command (SSH_CLIENT)"),
        "{err}"
    );
    let (code, err) = ssh("SSH_CONNECTION", &format!("{V4_B} 52144 10.0.0.1 22"));
    assert_eq!(code, Some(1));
    assert!(err.contains("(SSH_CONNECTION)"), "{err}");
    assert!(
        netns.nft_elements("repute").is_empty(),
        "nothing was blocked"
    );

    for ip in ["10.1.2.3", "81.2.69.160", "93.184.215.14"] {
        let out = netns.run(&["block", "add", ip, "--force"]);
        assert!(out.status.success(), "{ip}: {}", stderr(&out));
    }
    let out = netns
        .repute()
        .env("SSH_CLIENT", format!("{V4_B} 52144 22"))
        .args(["block", "add", V4_B, "--force"])
        .output()
        .expect("spawn");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(netns.nft_elements("repute").len(), 4);
}

#[test]
fn max_entries_protects_the_set_even_when_forced() {
    let Some(netns) = Netns::new() else {
        return;
    };
    netns.write_config("[block]\nmax_entries = 2\n");
    assert!(netns.run(&["block", "add", V4]).status.success());
    assert!(netns.run(&["block", "add", V6]).status.success());
    let why = "2 addresses are already blocked (block.max_entries)";
    assert_refused(&netns, &["block", "add", V4_B], why);
    assert_refused(&netns, &["block", "add", V4_B, "--force"], why);
    let out = netns.run(&["block", "add", V4_B]);
    assert!(
        !stderr(&out).contains("--force"),
        "the limit is not forceable"
    );
    // Renewing an address already there is not a new entry.
    assert!(
        netns
            .run(&["block", "add", V4, "--for", "2h"])
            .status
            .success()
    );
    assert_eq!(netns.nft_elements("repute").len(), 2);
    assert!(netns.run(&["block", "del", V6]).status.success());
    assert!(netns.run(&["block", "add", V4_B]).status.success());
}

#[test]
fn a_flushed_kernel_set_is_restored_from_state() {
    let Some(netns) = Netns::new() else {
        return;
    };
    assert!(
        netns
            .run(&["block", "add", V4, "--for", "1h", "--reason", "kept"])
            .status
            .success()
    );
    netns.ok(&["nft", "flush", "ruleset"]);
    assert!(netns.nft_elements("repute").is_empty());
    let entries = listed(&netns);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["restored"], true);
    assert_eq!(entries[0]["reason"], "kept");
    assert_eq!(netns.nft_elements("repute"), vec![V4.to_string()]);
    let ruleset = netns.ok(&["nft", "list", "table", "inet", "repute"]);
    assert!(ruleset.contains("ip saddr @block4 drop"), "{ruleset}");
}

/// Blocks `V4` and `V4_B`, then empties the kernel sets behind repute's back (a reboot).
fn recorded_but_gone_from_the_kernel(netns: &Netns) {
    for ip in [V4, V4_B] {
        let out = netns.run(&["block", "add", ip, "--for", "1h", "--reason", "old"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    netns.ok(&["nft", "flush", "set", "inet", "repute", "block4"]);
    assert!(netns.nft_elements("repute").is_empty());
}

#[test]
fn list_does_not_restore_an_address_allowlisted_since() {
    let Some(netns) = Netns::new() else {
        return;
    };
    recorded_but_gone_from_the_kernel(&netns);
    netns.write_config(&format!("allowlist = [\"{V4}/32\"]\n"));
    let entries = listed(&netns);
    assert_eq!(entries.len(), 2, "{entries:?}");
    let v4 = entries.iter().find(|e| e["ip"] == V4).expect("v4 listed");
    assert_eq!(v4["restored"], false);
    let why = v4["not_restored"].as_str().unwrap_or_default();
    assert!(why.contains("on the allowlist"), "{why}");
    let other = entries.iter().find(|e| e["ip"] == V4_B).expect("other");
    assert_eq!(other["restored"], true);
    assert!(other.get("not_restored").is_none(), "{other}");
    assert_eq!(netns.nft_elements("repute"), vec![V4_B.to_string()]);
    // The record is forgotten: the next listing shows only the other block.
    let entries = listed(&netns);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["ip"], V4_B);
}

#[test]
fn list_does_not_block_the_ssh_session_running_it() {
    let Some(netns) = Netns::new() else {
        return;
    };
    recorded_but_gone_from_the_kernel(&netns);
    let out = netns
        .repute()
        .args(["block", "list"])
        .env("SSH_CLIENT", format!("{V4} 51234 22"))
        .output()
        .expect("spawn repute");
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(
        table.contains("not restored: the address of the SSH session running this command"),
        "{table}"
    );
    assert!(table.contains("record forgotten"), "{table}");
    assert_eq!(netns.nft_elements("repute"), vec![V4_B.to_string()]);
}

#[test]
fn flush_does_not_restore_before_flushing() {
    let Some(netns) = Netns::new() else {
        return;
    };
    recorded_but_gone_from_the_kernel(&netns);
    // Watch every change to the ruleset while flushing: nothing may be added.
    let mut monitor = netns
        .command("nft")
        .args(["monitor", "elements"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn nft monitor");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = netns.run(&["block", "flush"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = monitor.kill();
    let seen = monitor.wait_with_output().expect("monitor output");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "unblocked 2 addresses\n");
    let events = stdout(&seen);
    assert!(!events.contains("add element"), "{events}");
    assert!(netns.nft_elements("repute").is_empty());
    assert!(listed(&netns).is_empty());
}

#[test]
fn a_damaged_table_is_repaired_by_the_next_add() {
    let Some(netns) = Netns::new() else {
        return;
    };
    assert!(netns.run(&["block", "add", V4]).status.success());
    // Behind repute's back: our drop rules are gone, the sets stay.
    netns.ok(&["nft", "flush", "chain", "inet", "repute", "input"]);
    let ruleset = netns.ok(&["nft", "list", "table", "inet", "repute"]);
    assert!(!ruleset.contains("saddr @block4 drop"), "{ruleset}");
    // A renewal of an address still in the set, and a new address, both repair it.
    let out = netns.run(&["block", "add", V4, "--for", "2h"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ruleset = netns.ok(&["nft", "list", "table", "inet", "repute"]);
    assert!(ruleset.contains("ip saddr @block4 drop"), "{ruleset}");
    assert!(ruleset.contains("ip6 saddr @block6 drop"), "{ruleset}");
    let entries = listed(&netns);
    let left = entries[0]["remaining_secs"].as_u64().unwrap_or(0);
    assert!(left > 3600, "renewed to 2h: {left}");
    netns.ok(&["nft", "delete", "chain", "inet", "repute", "input"]);
    assert!(netns.run(&["block", "add", V4_B]).status.success());
    let ruleset = netns.ok(&["nft", "list", "table", "inet", "repute"]);
    assert!(ruleset.contains("hook input"), "{ruleset}");
    assert!(ruleset.contains("ip saddr @block4 drop"), "{ruleset}");
}

#[test]
fn bad_input_is_one_line_and_blocks_nothing() {
    let Some(netns) = Netns::new() else {
        return;
    };
    for (args, why) in [
        (
            vec!["block", "add", "host.example.com"],
            "\"host.example.com\" is not an IPv4 or IPv6 address",
        ),
        (
            vec!["block", "add", "1.2.3.4; rm -rf /"],
            "is not an IPv4 or IPv6 address",
        ),
        (
            vec!["block", "add", V4, "--for", "5 parsecs"],
            "invalid duration",
        ),
        (
            vec!["block", "add", V4, "--for", "0s"],
            "must be more than zero",
        ),
        (
            vec!["block", "del", "nonsense"],
            "is not an IPv4 or IPv6 address",
        ),
    ] {
        let out = netns.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    assert!(netns.nft_elements("repute").is_empty());
}

#[test]
fn mapped_addresses_and_unrecorded_kernel_entries() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let out = netns.run(&["block", "add", &format!("::ffff:{V4}")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        netns.nft_elements("repute"),
        vec![V4.to_string()],
        "an IPv4-mapped address lands in the IPv4 set"
    );
    // An element someone added by hand: listed, with no reason, and left alone.
    let by_hand = format!("add element inet repute block4 {{ {V4_B} timeout 5m }}");
    netns.ok(&["nft", &by_hand]);
    let entries = listed(&netns);
    let hand = entries
        .iter()
        .find(|e| e["ip"] == V4_B)
        .expect("hand-added entry listed");
    assert!(hand["reason"].is_null() && hand["backend"].is_null());
    assert_eq!(netns.nft_elements("repute").len(), 2);
}

#[test]
fn concurrent_processes_each_get_their_block() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let addresses: Vec<String> = (1..=12).map(|i| format!("185.220.101.{i}")).collect();
    let children: Vec<_> = addresses
        .iter()
        .map(|ip| netns.spawn(&["block", "add", ip, "--reason", "parallel"]))
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut expected = addresses.clone();
    expected.sort();
    assert_eq!(netns.nft_elements("repute"), expected);
    let entries = listed(&netns);
    assert_eq!(entries.len(), 12);
    assert!(entries.iter().all(|e| e["reason"] == "parallel"));
}

#[test]
fn the_entry_limit_holds_under_concurrency() {
    let Some(netns) = Netns::new() else {
        return;
    };
    netns.write_config("[block]\nmax_entries = 5\n");
    let children: Vec<_> = (1..=12)
        .map(|i| netns.spawn(&["block", "add", &format!("185.220.101.{i}")]))
        .collect();
    let mut refused = 0;
    for child in children {
        let out = child.wait_with_output().expect("wait");
        match out.status.code() {
            Some(0) => {}
            Some(1) => {
                assert!(
                    stderr(&out).contains("block.max_entries"),
                    "{}",
                    stderr(&out)
                );
                refused += 1;
            }
            other => panic!("unexpected exit {other:?}: {}", stderr(&out)),
        }
    }
    assert_eq!(refused, 7);
    assert_eq!(netns.nft_elements("repute").len(), 5);
    assert_eq!(listed(&netns).len(), 5);
}
