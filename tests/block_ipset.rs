//! `repute block` with the ipset + iptables fallback, inside a network namespace each test
//! creates: forced by config, and chosen by `auto` where `nft` is not in `PATH`.

mod block_support;
mod need;

use block_support::{Netns, listed, stderr, stdout, which};

const V4: &str = "45.155.205.233";
const V6: &str = "2a06:4880::5";

/// `ipset list <set> -o save` entries, straight from ipset.
fn ipset_entries(netns: &Netns, set: &str) -> Vec<String> {
    let out = netns
        .command("ipset")
        .args(["list", set, "-o", "save"])
        .output()
        .expect("ipset");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("add "))
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect()
}

fn rule_count(netns: &Netns, tool: &str, set: &str) -> usize {
    netns
        .ok(&[tool, "-S"])
        .lines()
        .filter(|l| l.contains(&format!("--match-set {set} src -j DROP")))
        .count()
}

#[test]
fn ipset_backend_add_list_expire_delete_flush() {
    let Some(netns) = Netns::needing(&["ipset", "iptables"]) else {
        return;
    };
    netns.write_config("[block]\nbackend = \"ipset\"\nforward = true\n");
    let out = netns.run(&["block", "add", V4, "--for", "1h", "--reason", "brute force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("blocked {V4} for 1h (ipset)\n"));
    assert!(
        netns
            .run(&["block", "add", V6, "--for", "2s"])
            .status
            .success()
    );
    assert!(
        netns
            .run(&["block", "add", V4, "--for", "2h"])
            .status
            .success()
    );

    assert_eq!(ipset_entries(&netns, "repute-v4"), vec![V4]);
    assert_eq!(ipset_entries(&netns, "repute-v6"), vec![V6]);
    // One rule per chain and family, however many times it was set up.
    for (tool, set) in [("iptables", "repute-v4"), ("ip6tables", "repute-v6")] {
        assert_eq!(rule_count(&netns, tool, set), 2, "{tool} INPUT and FORWARD");
    }
    assert!(
        netns.nft_elements("repute").is_empty(),
        "no nft table in ipset mode"
    );

    let entries = listed(&netns);
    let v4 = entries.iter().find(|e| e["ip"] == V4).expect("v4 listed");
    assert_eq!(v4["reason"], "brute force");
    assert_eq!(v4["backend"], "ipset");
    assert!(
        v4["remaining_secs"].as_u64().is_some_and(|s| s > 3600),
        "renewed to 2h: {v4}"
    );

    netns.wait_for("ipset to expire the IPv6 entry", || {
        ipset_entries(&netns, "repute-v6").is_empty()
    });
    assert_eq!(listed(&netns).len(), 1);

    assert!(netns.run(&["block", "del", V4]).status.success());
    assert!(ipset_entries(&netns, "repute-v4").is_empty());
    assert!(netns.run(&["block", "add", V6]).status.success());
    let out = netns.run(&["block", "flush"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ipset_entries(&netns, "repute-v6").is_empty());
    assert!(listed(&netns).is_empty());

    // Turning forward off takes the FORWARD rules out.
    netns.write_config("[block]\nbackend = \"ipset\"\n");
    assert!(netns.run(&["block", "add", V4]).status.success());
    assert_eq!(rule_count(&netns, "iptables", "repute-v4"), 1);
    assert_eq!(rule_count(&netns, "ip6tables", "repute-v6"), 1);
}

#[test]
fn ipset_refuses_timeouts_it_cannot_hold() {
    let Some(netns) = Netns::needing(&["ipset", "iptables"]) else {
        return;
    };
    netns.write_config("[block]\nbackend = \"ipset\"\n");
    let out = netns.run(&["block", "add", V4, "--for", "30d"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("longer than the ipset backend allows"),
        "{err}"
    );
    assert!(ipset_entries(&netns, "repute-v4").is_empty());
}

#[test]
fn auto_falls_back_to_ipset_without_nft() {
    let Some(netns) = Netns::needing(&["ipset", "iptables"]) else {
        return;
    };
    // A PATH with the ipset and iptables tools but no nft.
    let bin = netns.dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    for tool in ["ipset", "iptables", "ip6tables"] {
        let real = which(tool).unwrap_or_else(|| panic!("{tool} is not installed"));
        std::os::unix::fs::symlink(real, bin.join(tool)).expect("symlink");
    }
    let out = netns
        .repute()
        .env("PATH", &bin)
        .args(["block", "add", V4])
        .output()
        .expect("spawn");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).ends_with("(ipset)\n"), "{}", stdout(&out));
    assert_eq!(ipset_entries(&netns, "repute-v4"), vec![V4]);

    let out = netns
        .repute()
        .env("PATH", netns.dir.path().join("empty"))
        .args(["block", "add", V4])
        .output()
        .expect("spawn");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("neither nft nor ipset is in PATH"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn concurrent_setup_inserts_each_rule_once() {
    let Some(netns) = Netns::needing(&["ipset", "iptables"]) else {
        return;
    };
    netns.write_config("[block]\nbackend = \"ipset\"\n");
    let children: Vec<_> = (1..=8)
        .map(|i| netns.spawn(&["block", "add", &format!("185.220.101.{i}")]))
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(ipset_entries(&netns, "repute-v4").len(), 8);
    assert_eq!(rule_count(&netns, "iptables", "repute-v4"), 1);
    assert_eq!(rule_count(&netns, "ip6tables", "repute-v6"), 1);
}

#[test]
fn ipset_list_restores_only_what_the_checks_allow_and_flush_restores_nothing() {
    let Some(netns) = Netns::needing(&["ipset", "iptables"]) else {
        return;
    };
    netns.write_config("[block]\nbackend = \"ipset\"\n");
    for ip in [V4, V6] {
        let out = netns.run(&["block", "add", ip, "--for", "1h"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // A reboot, as far as the sets are concerned; then V4 goes on the allowlist.
    netns.ok(&["ipset", "flush", "repute-v4"]);
    netns.ok(&["ipset", "flush", "repute-v6"]);
    netns.write_config(&format!(
        "allowlist = [\"{V4}/32\"]\n[block]\nbackend = \"ipset\"\n"
    ));
    let entries = listed(&netns);
    let v4 = entries.iter().find(|e| e["ip"] == V4).expect("v4 listed");
    assert_eq!(v4["restored"], false);
    let why = v4["not_restored"].as_str().unwrap_or_default();
    assert!(why.contains("on the allowlist"), "{why}");
    let v6 = entries.iter().find(|e| e["ip"] == V6).expect("v6 listed");
    assert_eq!(v6["restored"], true);
    assert!(ipset_entries(&netns, "repute-v4").is_empty());
    assert_eq!(ipset_entries(&netns, "repute-v6"), vec![V6]);

    // Gone from the sets again: flush empties everything and puts nothing back first.
    netns.ok(&["ipset", "flush", "repute-v6"]);
    let out = netns.run(&["block", "flush"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "unblocked 1 address\n");
    assert!(ipset_entries(&netns, "repute-v6").is_empty());
    assert!(listed(&netns).is_empty());
}
