//! `repute wazuh install` on a fake Wazuh home: what it writes, that a second run changes
//! nothing, that `--dry-run` changes nothing, that the edited files parse, and that the
//! installed integration then works with the installed key.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::mock_abuseipdb::MockAbuseIpdb;
use support::wazuh_tree::{OSSEC_CONF, WazuhTree, split_message};

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
    let conf = OSSEC_CONF.replace(
        "  <ruleset>",
        "  <integration>\n    <name>custom-abuseipdb.py</name>\n    <hook_url>https://api.abuseipdb.com/api/v2/check</hook_url>\n    <api_key>oldkey</api_key>\n    <level>10</level>\n    <rule_id>100001</rule_id>\n    <alert_format>json</alert_format>\n  </integration>\n\n  <ruleset>",
    );
    std::fs::write(tree.path().join("etc/ossec.conf"), &conf).unwrap();
    std::fs::write(
        tree.path().join("etc/rules/local_rules.xml"),
        "<group name=\"local,syslog,sshd,\">\n<rule id=\"100001\" level=\"10\"><if_sid>5716</if_sid></rule>\n</group>\n",
    )
    .unwrap();
    let key = key_file(&tree);
    let out = install(&tree, &["--api-key-file", &key]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    // Same name, so integratord needs no new block: the script is replaced (and kept).
    assert_eq!(
        std::fs::read_to_string(tree.path().join("etc/ossec.conf")).unwrap(),
        conf
    );
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
    assert!(
        said.contains("local_rules.xml also defines rule 100001"),
        "{said}"
    );
    assert!(
        said.contains("<api_key>"),
        "warns that ossec.conf's key wins: {said}"
    );
    assert!(text(&install(&tree, &["--api-key-file", &key])).contains("nothing to do"));
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
    let url = mock.check_url();
    let args = [
        alert.to_str().unwrap(),
        "",
        &url,
        "",
        "",
        "10",
        "3",
        "> /dev/null 2>&1",
    ];
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
