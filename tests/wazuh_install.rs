//! `repute wazuh install` on a fake Wazuh home: what it writes, that a second run changes
//! nothing, that `--dry-run` changes nothing, that the edited files parse, and that the
//! installed integration then works with the installed key. With `--active-response`: the
//! program in `active-response/bin/`, the `<command>` and `<active-response>` blocks, and the
//! installed program driven once as execd drives it, inside a private network namespace.
//! With `--agent`, on an agent's home: the program alone, no key, rules or ossec.conf change.

mod block_support;
mod need;
mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::mock_abuseipdb::MockAbuseIpdb;
use support::wazuh_tree::{AGENT_OSSEC_CONF, OSSEC_CONF, WazuhTree, args_4_8, split_message};

const KEY: &str = "install0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";

fn install(tree: &WazuhTree, extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_repute"));
    cmd.args(["wazuh", "install", "--wazuh-dir"])
        .arg(tree.path())
        .args(extra)
        .stdin(Stdio::null());
    cmd.output().expect("run install")
}

fn key_file(tree: &WazuhTree) -> String {
    let path = tree.path().join("tmp/abuseipdb.key");
    std::fs::write(&path, format!("{KEY}\n")).unwrap();
    path.to_string_lossy().into_owned()
}

/// Every file under the tree (but the socket) with its bytes and mode.
fn snapshot(root: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if meta.is_dir() {
                out.insert(format!("{rel}/"), (Vec::new(), meta.mode()));
                stack.push(path);
            } else if meta.is_file() {
                out.insert(rel, (std::fs::read(&path).unwrap(), meta.mode()));
            }
        }
    }
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn install_twice_then_nothing_to_do_and_everything_parses() {
    let tree = WazuhTree::new();
    let key = key_file(&tree);
    let first = install(&tree, &["--api-key-file", &key]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let said = text(&first);
    assert!(
        said.contains("installed integrations/custom-abuseipdb"),
        "{said}"
    );
    assert!(said.contains("updated etc/ossec.conf (backup: etc/ossec.conf.repute-backup-"));
    assert!(
        said.contains("systemctl restart wazuh-manager"),
        "tells the user to restart"
    );
    assert!(!said.contains(KEY));

    // The binary: this program, mode 0750 (never writable by the wazuh group).
    let bin = tree.path().join("integrations/custom-abuseipdb");
    assert_eq!(
        std::fs::read(&bin).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_repute")).unwrap()
    );
    assert_eq!(bin.metadata().unwrap().permissions().mode() & 0o7777, 0o750);
    // The key: its own file, 0640; not in ossec.conf.
    let key_path = tree.path().join("etc/repute/abuseipdb.key");
    assert_eq!(std::fs::read_to_string(&key_path).unwrap().trim(), KEY);
    assert_eq!(key_path.metadata().unwrap().mode() & 0o7777, 0o640);
    let cache_dir = tree.path().join("var/repute");
    assert_eq!(cache_dir.metadata().unwrap().mode() & 0o7777, 0o2770);

    // ossec.conf: the original bytes around exactly one inserted block, both roots kept.
    let conf = std::fs::read_to_string(tree.path().join("etc/ossec.conf")).unwrap();
    assert!(!conf.contains(KEY));
    let block_start = conf.find("  <!-- repute:").unwrap();
    let block_end = conf.find("<name>custom-abuseipdb</name>").unwrap();
    let after_block = block_end + conf[block_end..].find("</integration>\n").unwrap() + 15;
    assert_eq!(
        // The block and the blank line that separates it from the previous section.
        format!("{}{}", &conf[..block_start - 1], &conf[after_block..]),
        OSSEC_CONF,
        "everything but the block is byte-identical"
    );
    assert_eq!(conf.matches("<ossec_config>").count(), 2);
    assert!(conf.contains("<!-- Slack, for the night shift -->"));
    let roots = repute::wazuh::xml::parse(&conf).expect("ossec.conf parses");
    assert_eq!(roots.iter().filter(|r| r.name == "ossec_config").count(), 2);
    let mut reader = quick_xml::Reader::from_str(&conf);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("quick-xml refuses ossec.conf: {e}"),
        }
    }
    let backup = std::fs::read_dir(tree.path().join("etc"))
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("ossec.conf.repute-backup-")
        })
        .expect("a backup");
    assert_eq!(std::fs::read_to_string(backup.path()).unwrap(), OSSEC_CONF);

    // The rules file parses and passes the lint.
    let rules =
        std::fs::read_to_string(tree.path().join("etc/rules/repute_abuseipdb_rules.xml")).unwrap();
    repute::wazuh::ruleset::lint(&rules).expect("rules lint clean");

    // Second run: nothing to do, nothing touched.
    let before = snapshot(tree.path());
    let second = install(&tree, &["--api-key-file", &key]);
    assert_eq!(second.status.code(), Some(0));
    assert!(text(&second).contains("nothing to do"), "{}", text(&second));
    assert_eq!(snapshot(tree.path()), before);
}

#[test]
fn dry_run_prints_a_diff_and_changes_nothing() {
    let tree = WazuhTree::new();
    let key = key_file(&tree);
    let before = snapshot(tree.path());
    let out = install(&tree, &["--api-key-file", &key, "--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(snapshot(tree.path()), before, "dry run changed files");
    let said = text(&out);
    assert!(
        said.contains("--- a/etc/ossec.conf\n+++ b/etc/ossec.conf\n@@ -"),
        "{said}"
    );
    assert!(said.contains("+    <name>custom-abuseipdb</name>"));
    assert!(said.contains("+++ b/etc/rules/repute_abuseipdb_rules.xml"));
    assert!(said.contains("integrations/custom-abuseipdb: this program"));
    assert!(said.contains("etc/repute/abuseipdb.key: the API key"));
    assert!(!said.contains(KEY), "the key is never shown");
    assert!(said.contains("nothing was changed"));
}

/// The blog's rules as its readers pasted them into local_rules.xml, after the stock example.
pub const BLOG_LOCAL_RULES: &str = r#"<!-- Local rules -->

<!-- Modify it at your will. -->
<!-- Copyright (C) 2015, Wazuh Inc. -->

<!-- Example -->
<group name="local,syslog,sshd,">

  <!--
  Dec 10 01:02:02 host sshd[1234]: Failed none for root from 1.1.1.1 port 1066 ssh2
  -->
  <rule id="100001" level="5">
    <if_sid>5716</if_sid>
    <srcip>1.1.1.1</srcip>
    <description>sshd: authentication failed from IP 1.1.1.1.</description>
    <group>authentication_failed,pci_dss_10.2.4,pci_dss_10.2.5,</group>
  </rule>

</group>

<group name="local,syslog,sshd,">
<rule id="100001" level="10">
<if_sid>5716</if_sid>
<match type="pcre2">\b(?!(10)|192\.168|172\.(2[0-9]|1[6-9]|3[0-1])|(25[6-9]|2[6-9][0-9]|[3-9][0-9][0-9]|99[1-9]))[0-9]{1,3}\.(25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.(25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.(25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)</match>
<description>sshd: Authentication failed from a public IP address $(srcip).</description>
<group>authentication_failed,pci_dss_10.2.4,pci_dss_10.2.5,</group>
</rule>
</group>

<group name="local,syslog,sshd,">
<rule id="100002" level="10">
<field name="abuseipdb.abuse_confidence_score" type="pcre2" negate="yes">^0$</field>
<description>IP with $(abuseipdb.abuse_confidence_score)% confidence of abuse connected to your network.</description>
<group>authentication_failed,pci_dss_10.2.4,pci_dss_10.2.5,</group>
</rule>
</group>
"#;

/// The blog's `<integration>` block, on its rule 100001.
pub const BLOG_INTEGRATION: &str = "  <integration>\n    <name>custom-abuseipdb.py</name>\n    <hook_url>https://api.abuseipdb.com/api/v2/check</hook_url>\n    <api_key>oldkey</api_key>\n    <level>10</level>\n    <rule_id>100001</rule_id>\n    <alert_format>json</alert_format>\n  </integration>\n\n  <ruleset>";

#[test]
fn the_blogs_install_is_upgraded_in_place() {
    let tree = WazuhTree::new();
    // The blog's setup: a .py script named in ossec.conf, its rules in local_rules.xml.
    let script = tree.path().join("integrations/custom-abuseipdb.py");
    std::fs::write(
        &script,
        "#!/var/ossec/framework/python/bin/python3\nimport json\n",
    )
    .unwrap();
    let conf = OSSEC_CONF.replace("  <ruleset>", BLOG_INTEGRATION);
    std::fs::write(tree.path().join("etc/ossec.conf"), &conf).unwrap();
    let local = tree.path().join("etc/rules/local_rules.xml");
    std::fs::write(&local, BLOG_LOCAL_RULES).unwrap();
    let key = key_file(&tree);
    let out = install(&tree, &["--api-key-file", &key]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    // Same name, so integratord needs no new block; it now runs on the new trigger.
    assert_eq!(
        std::fs::read_to_string(tree.path().join("etc/ossec.conf")).unwrap(),
        conf.replace("<rule_id>100001</rule_id>", "<rule_id>110100</rule_id>")
    );
    assert!(said.contains("it now runs on 110100"), "{said}");
    assert_eq!(
        std::fs::read(&script).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_repute")).unwrap()
    );
    assert!(!tree.path().join("integrations/custom-abuseipdb").exists());
    assert!(
        said.contains(
            "custom-abuseipdb.py (backup: integrations/custom-abuseipdb.py.repute-backup-"
        ),
        "{said}"
    );
    // local_rules.xml: the blog's two rules out (a backup first), the stock example kept.
    let local_now = std::fs::read_to_string(&local).unwrap();
    assert!(
        said.contains("etc/rules/local_rules.xml: removed the blog's rules 100001 and 100002"),
        "{said}"
    );
    assert!(
        said.contains("the stock example rule 100001 is left as it is"),
        "{said}"
    );
    assert!(
        said.contains(
            "updated etc/rules/local_rules.xml (backup: etc/rules/local_rules.xml.repute-backup-"
        ),
        "{said}"
    );
    let rules = repute::wazuh::xml::parse(&local_now).unwrap();
    let ids: Vec<&str> = rules
        .iter()
        .flat_map(|r| r.walk())
        .filter(|e| e.name == "rule")
        .filter_map(|e| e.attr("id"))
        .collect();
    assert_eq!(ids, ["100001"]);
    assert!(local_now.contains("<srcip>1.1.1.1</srcip>"));
    assert!(local_now.contains("removed the blog's rule 100001 here"));
    assert!(roxmltree::Document::parse(&format!("<r>{local_now}</r>")).is_ok());
    assert!(
        said.contains("<api_key>"),
        "warns that ossec.conf's key wins: {said}"
    );
    assert!(text(&install(&tree, &["--api-key-file", &key])).contains("nothing to do"));
}

/// The note names the blog only for the blog's rules: a stock home's example, or a rule of
/// the administrator's own, is said to be left alone (and an integration on someone's own
/// 100001 is not moved).
#[test]
fn rules_that_are_not_the_blogs_are_left_alone_and_named_right() {
    let tree = WazuhTree::new();
    let local = tree.path().join("etc/rules/local_rules.xml");
    let stock_only = BLOG_LOCAL_RULES
        .split("<group name=\"local,syslog,sshd,\">\n<rule id=\"100001\" level=\"10\">")
        .next()
        .unwrap()
        .to_string();
    std::fs::write(&local, &stock_only).unwrap();
    let out = install(&tree, &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(!said.contains("blog"), "{said}");
    assert!(
        said.contains("the stock example rule 100001 is left as it is"),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&local).unwrap(), stock_only);

    let tree = WazuhTree::new();
    let own = "<group name=\"local,\">\n  <rule id=\"100001\" level=\"10\">\n    <if_sid>5710</if_sid>\n    <description>mine</description>\n  </rule>\n</group>\n";
    std::fs::write(tree.path().join("etc/rules/local_rules.xml"), own).unwrap();
    let conf = OSSEC_CONF.replace("  <ruleset>", BLOG_INTEGRATION);
    std::fs::write(tree.path().join("etc/ossec.conf"), &conf).unwrap();
    let out = install(&tree, &[]);
    let said = text(&out);
    assert!(
        said.contains("rule 100001 is not the blog's rule: left as it is"),
        "{said}"
    );
    assert!(
        said.contains("which etc/rules/local_rules.xml defines (not the blog's rule)"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(tree.path().join("etc/rules/local_rules.xml")).unwrap(),
        own
    );
    assert!(
        std::fs::read_to_string(tree.path().join("etc/ossec.conf"))
            .unwrap()
            .contains("<rule_id>100001</rule_id>")
    );
}

/// 4.7's integratord refuses `<timeout>`/`<retries>` in `<integration>`: on a home that says
/// it is 4.7, install takes them out of the block it relies on (4.8+ keeps them).
#[test]
fn on_wazuh_4_7_the_integration_loses_timeout_and_retries() {
    for (version, kept) in [("v4.7.5", false), ("v4.9.2", true)] {
        let tree = WazuhTree::new();
        std::fs::create_dir_all(tree.path().join("bin")).unwrap();
        std::fs::write(
            tree.path().join("bin/wazuh-control"),
            format!("#!/bin/sh\n\n# Wazuh Control\nVERSION=\"{version}\"\nDAEMONS=x\n"),
        )
        .unwrap();
        let conf = OSSEC_CONF.replace(
            "  <ruleset>",
            &BLOG_INTEGRATION.replace(
                "    <alert_format>json</alert_format>\n",
                "    <alert_format>json</alert_format>\n    <timeout>10</timeout>\n    <retries>3</retries>\n",
            ),
        );
        std::fs::write(tree.path().join("etc/ossec.conf"), &conf).unwrap();
        let out = install(&tree, &[]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(0), "{said}");
        assert!(
            said.contains(&format!(
                "Wazuh {} (read from bin/wazuh-control)",
                &version[1..]
            )),
            "{said}"
        );
        let now = std::fs::read_to_string(tree.path().join("etc/ossec.conf")).unwrap();
        assert_eq!(
            now.contains("<timeout>10</timeout>"),
            kept,
            "{version}: {now}"
        );
        assert_eq!(now.contains("<retries>3</retries>"), kept, "{version}");
        // Slack's block ends so too; ours does once both lines are gone.
        let ends = now
            .matches("    <alert_format>json</alert_format>\n  </integration>")
            .count();
        assert_eq!(ends, if kept { 1 } else { 2 }, "{now}");
    }
}

/// Issue 10 item 4: two installs in one second named their backups alike, and the second
/// copy replaced the first (the original ossec.conf was lost). Every name a backup of this
/// run could take is taken here; none may be overwritten.
#[test]
fn a_backup_never_replaces_another() {
    let tree = WazuhTree::new();
    let etc = tree.path().join("etc");
    let now = jiff::Timestamp::now();
    let mut taken = Vec::new();
    for s in 0..30 {
        let stamp = (now + jiff::SignedDuration::from_secs(s))
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let path = etc.join(format!("ossec.conf.repute-backup-{stamp}"));
        std::fs::write(&path, "the first backup\n").unwrap();
        taken.push(path);
    }
    let out = install(&tree, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for path in &taken {
        assert_eq!(std::fs::read_to_string(path).unwrap(), "the first backup\n");
    }
    let backups: Vec<String> = std::fs::read_dir(&etc)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ossec.conf.repute-backup-"))
        .collect();
    assert_eq!(backups.len(), taken.len() + 1, "{backups:?}");
    let new = backups
        .iter()
        .map(|n| etc.join(n))
        .find(|p| !taken.contains(p))
        .unwrap();
    assert_eq!(std::fs::read_to_string(new).unwrap(), OSSEC_CONF);
}

/// Issue 10 item 5: a symlinked ossec.conf (configuration management) was replaced by a
/// regular file; the target is edited and the link stays.
#[test]
fn a_symlinked_ossec_conf_is_edited_where_it_points() {
    let tree = WazuhTree::new();
    let managed = tree.path().join("tmp/managed-ossec.conf");
    std::fs::write(&managed, OSSEC_CONF).unwrap();
    let conf = tree.path().join("etc/ossec.conf");
    std::fs::remove_file(&conf).unwrap();
    std::os::unix::fs::symlink(&managed, &conf).unwrap();
    let out = install(&tree, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        std::fs::symlink_metadata(&conf)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_link(&conf).unwrap(), managed);
    assert!(
        std::fs::read_to_string(&managed)
            .unwrap()
            .contains("<name>custom-abuseipdb</name>")
    );
    assert!(text(&out).contains("a symlink: edited"), "{}", text(&out));
}

/// Issue 10 item 6: ossec.conf was edited first, so a later failure left the
/// `<integration>` block naming a program never installed. Here the rules file cannot be
/// written (a directory holds its name): install fails, and the tree is as it was.
#[test]
fn a_failed_install_leaves_the_tree_as_it_was() {
    let tree = WazuhTree::new();
    let blocker = tree.path().join("etc/rules/repute_abuseipdb_rules.xml");
    std::fs::create_dir_all(blocker.join("x")).unwrap();
    let key = key_file(&tree);
    let before = snapshot(tree.path());
    let out = install(&tree, &["--api-key-file", &key, "--active-response"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("repute_abuseipdb_rules.xml"),
        "{}",
        text(&out)
    );
    assert_eq!(snapshot(tree.path()), before);
}

/// Issue 10 item 7: a byte-order mark at the start of ossec.conf (refused before: the
/// splice landed 3 bytes early), one in the key file (sent inside the `Key:` header before),
/// and a self-closing first `<ossec_config/>` (refused before).
#[test]
fn byte_order_marks_and_a_self_closing_root_are_handled() {
    let tree = WazuhTree::new();
    let conf_path = tree.path().join("etc/ossec.conf");
    // From the first root on: with a comment first, the old splice happened to land right.
    let from_root = &OSSEC_CONF[OSSEC_CONF.find("<ossec_config>").unwrap()..];
    std::fs::write(&conf_path, format!("\u{feff}{from_root}")).unwrap();
    let key = tree.path().join("tmp/bom.key");
    std::fs::write(&key, format!("\u{feff}{KEY}\r\n")).unwrap();
    let out = install(&tree, &["--api-key-file", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let conf = std::fs::read_to_string(&conf_path).unwrap();
    assert!(conf.starts_with('\u{feff}'));
    let roots = repute::wazuh::xml::parse(&conf[3..]).unwrap();
    let integration = roots[0]
        .children
        .iter()
        .filter(|c| c.name == "integration")
        .count();
    assert_eq!(integration, 2, "slack and ours, inside the first root");
    assert_eq!(
        std::fs::read_to_string(tree.path().join("etc/repute/abuseipdb.key")).unwrap(),
        format!("{KEY}\n")
    );

    let tree = WazuhTree::new();
    let conf_path = tree.path().join("etc/ossec.conf");
    std::fs::write(&conf_path, format!("<ossec_config/>\n{OSSEC_CONF}")).unwrap();
    let out = install(&tree, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let conf = std::fs::read_to_string(&conf_path).unwrap();
    let ours = repute::wazuh::ossec_conf::OssecConf::parse(&conf)
        .unwrap()
        .integrations();
    assert!(ours.iter().any(|i| i.name == "custom-abuseipdb"));
    assert!(conf.starts_with("<ossec_config/>\n"));
}

#[test]
fn a_directory_that_is_not_a_wazuh_home_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_repute"))
        .args(["wazuh", "install", "--wazuh-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1);
    assert!(err.contains("etc/ossec.conf"), "{err}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written"
    );
    // A broken ossec.conf is named, and left alone.
    let tree = WazuhTree::new();
    std::fs::write(
        tree.path().join("etc/ossec.conf"),
        "<ossec_config><global></ossec_config>",
    )
    .unwrap();
    let out = install(&tree, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ossec.conf"));
    assert!(!tree.path().join("integrations/custom-abuseipdb").exists());
}

#[test]
fn the_installed_integration_runs_with_the_installed_key() {
    let tree = WazuhTree::new();
    let key = key_file(&tree);
    assert_eq!(
        install(&tree, &["--api-key-file", &key]).status.code(),
        Some(0)
    );
    let mock = MockAbuseIpdb::start();
    mock.expect_key(KEY);
    let alert = tree.write_alert(
        "custom-abuseipdb-1-2.alert",
        r#"{"rule":{"id":"100001","description":"d"},"agent":{"id":"000","name":"m"},"id":"1.2","full_log":"x","data":{"srcip":"45.33.32.156"},"location":"/var/log/auth.log"}"#,
    );
    // As ossec.conf now says: no <api_key>, the hook URL (pointed at the mock here).
    let args = args_4_8(alert.to_str().unwrap(), "", &mock.check_url());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let status = tree
        .integratord_command("custom-abuseipdb", &args)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let got = tree.wait_for(1, Duration::from_secs(5));
    let (location, event) = split_message(&got[0]);
    assert_eq!(location, "abuseipdb");
    assert!(
        event["abuseipdb"]["abuse_confidence_score"].is_u64(),
        "{event}"
    );
    assert_eq!(mock.count("check"), 1);
}

// ---------------------------------------------------------------------------------------------
// --active-response

/// The direct children of the `<ossec_config>` roots named `name`.
fn sections<'a>(
    roots: &'a [repute::wazuh::xml::Element],
    name: &'a str,
) -> Vec<&'a repute::wazuh::xml::Element> {
    roots
        .iter()
        .filter(|r| r.name == "ossec_config")
        .flat_map(|r| r.children.iter())
        .filter(|c| c.name == name)
        .collect()
}

fn child_text(el: &repute::wazuh::xml::Element, name: &str) -> Option<String> {
    el.child(name).map(|c| c.text.clone())
}

/// quick-xml reads the whole file without an error.
fn assert_quick_xml_reads(text: &str) {
    let mut reader = quick_xml::Reader::from_str(text);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("quick-xml refuses ossec.conf: {e}"),
        }
    }
}

/// The `repute-block` command and active response of an ossec.conf, each asserted unique.
struct ArBlocks {
    command: repute::wazuh::xml::Element,
    active_response: repute::wazuh::xml::Element,
}

fn ar_blocks(conf: &str) -> ArBlocks {
    assert_quick_xml_reads(conf);
    let roots = repute::wazuh::xml::parse(conf).expect("ossec.conf parses");
    let commands: Vec<_> = sections(&roots, "command")
        .into_iter()
        .filter(|c| child_text(c, "name").as_deref() == Some("repute-block"))
        .collect();
    assert_eq!(
        commands.len(),
        1,
        "one <command> named repute-block: {conf}"
    );
    let ars: Vec<_> = sections(&roots, "active-response")
        .into_iter()
        .filter(|c| child_text(c, "command").as_deref() == Some("repute-block"))
        .collect();
    assert_eq!(
        ars.len(),
        1,
        "one <active-response> for repute-block: {conf}"
    );
    ArBlocks {
        command: commands[0].clone(),
        active_response: ars[0].clone(),
    }
}

/// Ids of the rules in `text` that are in the group `group`.
fn rules_in_group(text: &str, group: &str) -> Vec<String> {
    let roots = repute::wazuh::xml::parse(text).expect("rules parse");
    roots
        .iter()
        .flat_map(|r| r.walk())
        .filter(|e| e.name == "rule")
        .filter(|r| child_text(r, "group").is_some_and(|g| g.split(',').any(|x| x == group)))
        .filter_map(|r| r.attr("id").map(str::to_string))
        .collect()
}

#[test]
fn install_with_active_response_twice_then_nothing_to_do() {
    let tree = WazuhTree::new();
    let key = key_file(&tree);
    let args = [
        "--api-key-file",
        &key,
        "--active-response",
        "--ar-timeout",
        "900",
    ];
    let first = install(&tree, &args);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let said = text(&first);
    assert!(
        said.contains("installed active-response/bin/repute-block"),
        "{said}"
    );
    assert!(
        said.contains("installed integrations/custom-abuseipdb"),
        "{said}"
    );
    assert!(
        said.contains("<location>local</location>"),
        "says where it runs: {said}"
    );

    // The program: this binary, 0750, in a 0750 active-response/bin.
    let program = tree.path().join("active-response/bin/repute-block");
    assert_eq!(
        std::fs::read(&program).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_repute")).unwrap()
    );
    assert_eq!(program.metadata().unwrap().mode() & 0o7777, 0o750);
    for dir in ["active-response", "active-response/bin"] {
        let mode = tree.path().join(dir).metadata().unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o750, "{dir}");
    }

    // ossec.conf: one command, one active response, tied to the enrichment rules.
    let conf = std::fs::read_to_string(tree.path().join("etc/ossec.conf")).unwrap();
    let blocks = ar_blocks(&conf);
    let command = |name: &str| child_text(&blocks.command, name);
    assert_eq!(command("executable").as_deref(), Some("repute-block"));
    assert_eq!(command("timeout_allowed").as_deref(), Some("yes"));
    assert_eq!(command("extra_args").as_deref(), Some("--for 900s"));
    let ar = |name: &str| child_text(&blocks.active_response, name);
    assert_eq!(ar("disabled").as_deref(), Some("no"));
    assert_eq!(ar("location").as_deref(), Some("local"));
    assert_eq!(ar("timeout").as_deref(), Some("900"));
    assert_eq!(ar("rules_id").as_deref(), Some("110113,110114"));
    // Those rules are the installed ruleset's positive answers (110112 is their parent).
    let rules =
        std::fs::read_to_string(tree.path().join("etc/rules/repute_abuseipdb_rules.xml")).unwrap();
    let positive = rules_in_group(&rules, "abuseipdb_positive");
    assert_eq!(positive, ["110112", "110113", "110114"]);
    for id in ar("rules_id").unwrap_or_default().split(',') {
        assert!(positive.iter().any(|p| p == id), "rule {id}");
    }
    // Nothing else changed: the integration block is there, both roots and the comment kept.
    assert_eq!(conf.matches("<name>custom-abuseipdb</name>").count(), 1);
    assert_eq!(conf.matches("<ossec_config>").count(), 2);
    assert!(conf.contains("<!-- Slack, for the night shift -->"));
    assert!(conf.ends_with(&OSSEC_CONF[OSSEC_CONF.find("</ossec_config>").unwrap()..]));

    // Second run: nothing to do, nothing touched; without --active-response too.
    let before = snapshot(tree.path());
    let second = install(&tree, &args);
    assert_eq!(second.status.code(), Some(0));
    assert!(text(&second).contains("nothing to do"), "{}", text(&second));
    assert_eq!(snapshot(tree.path()), before);
    let plain = install(&tree, &["--api-key-file", &key]);
    assert!(text(&plain).contains("nothing to do"), "{}", text(&plain));
    assert_eq!(snapshot(tree.path()), before);
}

#[test]
fn dry_run_with_active_response_prints_the_blocks_and_changes_nothing() {
    let tree = WazuhTree::new();
    let before = snapshot(tree.path());
    let out = install(&tree, &["--active-response", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(snapshot(tree.path()), before, "dry run changed files");
    let said = text(&out);
    for line in [
        "+    <name>repute-block</name>",
        "+    <timeout_allowed>yes</timeout_allowed>",
        "+    <rules_id>110113,110114</rules_id>",
        "+    <timeout>600</timeout>",
        "# create active-response/bin/repute-block: this program",
        "nothing was changed",
    ] {
        assert!(said.contains(line), "{line:?} in {said}");
    }
    // The ossec.conf diff has one hunk per inserted place (integration; command and
    // active response at the end of the first root).
    let conf_diff = &said[..said.find("# ").unwrap_or(said.len())];
    assert_eq!(conf_diff.matches("\n@@ -").count(), 2, "{conf_diff}");
    let scored = install(
        &tree,
        &["--active-response", "--ar-min-score", "75", "--dry-run"],
    );
    assert!(
        text(&scored).contains("+    <extra_args>--for 600s --min-score 75</extra_args>"),
        "{}",
        text(&scored)
    );
    let bad = install(&tree, &["--active-response", "--ar-min-score", "101"]);
    assert_eq!(bad.status.code(), Some(2));
    let orphan = install(&tree, &["--ar-timeout", "60"]);
    assert_eq!(
        orphan.status.code(),
        Some(2),
        "--ar-timeout needs --active-response"
    );
    assert_eq!(snapshot(tree.path()), before, "nothing changed");
}

#[test]
fn an_existing_repute_block_command_is_kept_and_not_duplicated() {
    let tree = WazuhTree::new();
    // The administrator's own command (another --for), in the second root.
    let theirs = "  <command>\n    <name>repute-block</name>\n    <executable>repute-block</executable>\n    <extra_args>--for 2h --min-score 75</extra_args>\n    <timeout_allowed>yes</timeout_allowed>\n  </command>\n";
    let conf = OSSEC_CONF.replace("  <localfile>", &format!("{theirs}\n  <localfile>"));
    std::fs::write(tree.path().join("etc/ossec.conf"), &conf).unwrap();
    let out = install(&tree, &["--active-response"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let edited = std::fs::read_to_string(tree.path().join("etc/ossec.conf")).unwrap();
    let blocks = ar_blocks(&edited);
    assert_eq!(
        child_text(&blocks.command, "extra_args").as_deref(),
        Some("--for 2h --min-score 75"),
        "theirs is kept"
    );
    assert!(edited.contains(theirs));
    assert_eq!(
        child_text(&blocks.active_response, "rules_id").as_deref(),
        Some("110113,110114")
    );
    // A second run with another timeout: kept as it is, and said so.
    let again = install(&tree, &["--active-response", "--ar-timeout", "60"]);
    assert!(text(&again).contains("nothing to do"), "{}", text(&again));
    assert!(
        text(&again).contains("is kept (timeout 600)"),
        "{}",
        text(&again)
    );
    assert_eq!(
        std::fs::read_to_string(tree.path().join("etc/ossec.conf")).unwrap(),
        edited
    );
}

/// The installed program, run as execd runs it: from the home, argv[0]
/// `active-response/bin/repute-block`, the message with the installed `<extra_args>` on stdin,
/// `check_keys` read, `continue` written. The firewall is the namespace's, never the host's.
#[test]
fn the_installed_active_response_blocks_as_execd_drives_it() {
    use block_support::{Netns, execd};
    use serde_json::json;

    let tree = WazuhTree::new();
    let out = install(&tree, &["--active-response", "--ar-timeout", "900"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let conf = std::fs::read_to_string(tree.path().join("etc/ossec.conf")).unwrap();
    let extra_args: Vec<String> = child_text(&ar_blocks(&conf).command, "extra_args")
        .unwrap_or_default()
        .split(' ')
        .map(str::to_string)
        .collect();
    let Some(netns) = Netns::new() else {
        return;
    };
    let message = |command: &str, ip: &str| {
        let alert = json!({
            "timestamp": "2026-11-28T10:00:00.000+0000",
            "rule": { "level": 14, "id": "110114", "description": "AbuseIPDB: known attacker" },
            "agent": { "id": "000", "name": "manager" },
            "id": "1764324000.99",
            "data": {
                "srcip": ip,
                "integration": "custom-abuseipdb",
                "abuseipdb": { "source": { "srcip": ip, "rule": "100001" }, "abuse_confidence_score": 97 }
            },
            "location": "abuseipdb"
        });
        format!("{}\n", execd::message(command, &extra_args, alert))
    };
    // As execd runs it: from the home, by its relative path.
    let run = |input: &str, reply: Option<&str>| {
        let reply = reply.map(execd::reply);
        execd::execute(
            &netns,
            tree.path(),
            execd::PROGRAM.as_ref(),
            input.as_bytes(),
            reply.as_deref(),
            |_| {},
        )
    };
    let v4 = "45.155.205.233";
    let add = run(&message("add", v4), Some("continue"));
    assert_eq!(add.code, Some(0));
    assert_eq!(
        add.check_keys.as_deref(),
        Some(execd::expected_check_keys(v4).as_str())
    );
    assert_eq!(netns.nft_elements("repute"), vec![v4]);
    let log = std::fs::read_to_string(tree.path().join("logs/active-responses.log")).unwrap();
    assert!(
        log.contains(&format!(
            "active-response/bin/repute-block: Blocked {v4} for 15m (nftables)"
        )),
        "the home was found and the installed --for used: {log}"
    );

    // A private address: refused before the handshake (so execd schedules nothing).
    let private = run(&message("add", "192.168.1.50"), Some("continue"));
    assert_eq!(private.code, Some(0));
    assert_eq!(private.check_keys, None);
    let log = std::fs::read_to_string(tree.path().join("logs/active-responses.log")).unwrap();
    assert!(log.contains("Refused to block 192.168.1.50: "), "{log}");

    // execd's timeout: delete, no handshake.
    let delete = run(&message("delete", v4), None);
    assert_eq!(delete.code, Some(0));
    assert_eq!(delete.check_keys, None);
    assert!(netns.nft_elements("repute").is_empty());
}

#[test]
fn install_agent_puts_only_the_program_then_nothing_to_do() {
    let tree = WazuhTree::agent();
    let before = snapshot(tree.path());

    // --dry-run: says what it would do, does nothing.
    let dry = install(&tree, &["--agent", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let said = text(&dry);
    assert!(
        said.contains("# create active-response/bin/repute-block: this program"),
        "{said}"
    );
    assert!(said.contains("nothing was changed"), "{said}");
    assert_eq!(snapshot(tree.path()), before, "dry run changed files");

    let first = install(&tree, &["--agent"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let said = text(&first);
    assert!(
        said.contains("installed active-response/bin/repute-block"),
        "{said}"
    );
    assert!(said.contains("--active-response on the manager"), "{said}");
    assert!(
        !said.contains("no API key"),
        "an agent is not asked for a key: {said}"
    );

    // The program: this binary, 0750, root:wazuh when run as root.
    let program = tree.path().join("active-response/bin/repute-block");
    assert_eq!(
        std::fs::read(&program).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_repute")).unwrap()
    );
    let meta = program.metadata().unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o750);
    // Owners are set only as root (/proc/self belongs to this process's user).
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if root && group_gid("wazuh").is_some() {
        assert_eq!((meta.uid(), Some(meta.gid())), (0, group_gid("wazuh")));
    }

    // Nothing else: no key, no rules, no integration, ossec.conf byte-identical.
    let mut after = snapshot(tree.path());
    assert!(after.remove("active-response/bin/repute-block").is_some());
    assert_eq!(after, before, "only the program was added");
    assert_eq!(
        std::fs::read_to_string(tree.path().join("etc/ossec.conf")).unwrap(),
        AGENT_OSSEC_CONF
    );

    // Second run: nothing to do, nothing touched.
    let before = snapshot(tree.path());
    let second = install(&tree, &["--agent"]);
    assert_eq!(second.status.code(), Some(0));
    assert!(text(&second).contains("nothing to do"), "{}", text(&second));
    assert_eq!(snapshot(tree.path()), before);
}

#[test]
fn an_api_key_with_agent_is_refused_in_one_line() {
    let tree = WazuhTree::agent();
    let key_path = tree.path().join("etc/abuseipdb.key");
    std::fs::write(&key_path, format!("{KEY}\n")).unwrap();
    let before = snapshot(tree.path());
    let out = install(
        &tree,
        &["--agent", "--api-key-file", key_path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("--api-key-file") && err.contains("--agent"),
        "{err}"
    );
    assert!(!err.contains(KEY));
    assert!(out.stdout.is_empty());
    assert_eq!(snapshot(tree.path()), before, "nothing written");
}

#[test]
fn agent_is_recognised_by_client_or_wazuh_agentd_and_a_manager_is_refused() {
    // A manager's home (no <client>, no bin/wazuh-agentd): refused in one line, untouched.
    let tree = WazuhTree::new();
    let before = snapshot(tree.path());
    let out = install(&tree, &["--agent"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("agent home") && err.contains("<client>"),
        "{err}"
    );
    assert_eq!(snapshot(tree.path()), before, "nothing written");

    // An agent whose ossec.conf lost its <client> is still one by bin/wazuh-agentd.
    let agent = WazuhTree::agent();
    std::fs::write(agent.path().join("etc/ossec.conf"), OSSEC_CONF).unwrap();
    std::fs::write(agent.path().join("bin/wazuh-agentd"), b"\x7fELF").unwrap();
    let out = install(&agent, &["--agent"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        agent
            .path()
            .join("active-response/bin/repute-block")
            .is_file()
    );
}

/// The id of a group, from /etc/group.
fn group_gid(name: &str) -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next() == Some(name))
            .then(|| fields.nth(1)?.parse().ok())
            .flatten()
    })
}
