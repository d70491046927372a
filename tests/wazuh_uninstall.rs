//! `repute wazuh uninstall` on a fake Wazuh home: after `install --active-response`, it puts
//! `ossec.conf` back byte for byte (keeping a backup), removes the programs, rules and cache,
//! keeps the key unless asked, changes nothing with `--dry-run`, and leaves someone else's
//! program of the same name alone. It reads and writes `ossec.conf` as install does: a
//! byte-order mark stays, a symlinked file is edited where it points, a backup never
//! replaces another.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::wazuh_tree::{OSSEC_CONF, WazuhTree};

const KEY: &str = "uninstall0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";

fn repute(tree: &WazuhTree, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_repute"))
        .args(["wazuh"])
        .args(args)
        .arg("--wazuh-dir")
        .arg(tree.path())
        .stdin(Stdio::null())
        .output()
        .expect("run repute")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn installed(tree: &WazuhTree) {
    let key = tree.path().join("tmp/abuseipdb.key");
    std::fs::write(&key, format!("{KEY}\n")).expect("key");
    let key = key.to_str().expect("utf-8");
    let out = repute(
        tree,
        &["install", "--api-key-file", key, "--active-response"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The cache the integration would have made.
    std::fs::write(tree.path().join("var/repute/repute.sqlite"), "x").expect("cache");
}

/// Every file and directory under the tree (but the socket), with its bytes.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            if meta.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                stack.push(path);
            } else if meta.is_file() {
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}

#[test]
fn uninstall_reverses_install_and_keeps_the_key_and_a_backup() {
    let tree = WazuhTree::new();
    installed(&tree);
    let conf_installed = std::fs::read_to_string(tree.path().join("etc/ossec.conf")).expect("conf");
    assert_ne!(conf_installed, OSSEC_CONF);

    let out = repute(&tree, &["uninstall"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    for line in [
        "note: kept the API key etc/repute/abuseipdb.key (--remove-key removes it)",
        "removed repute's blocks from etc/ossec.conf (backup: etc/ossec.conf.repute-backup-",
        "removed integrations/custom-abuseipdb\n",
        "removed active-response/bin/repute-block\n",
        "removed etc/rules/repute_abuseipdb_rules.xml\n",
        "removed the cache var/repute/\n",
        "Restart the manager",
    ] {
        assert!(said.contains(line), "{line:?} in {said}");
    }
    let conf = std::fs::read_to_string(tree.path().join("etc/ossec.conf")).expect("conf");
    assert_eq!(conf, OSSEC_CONF, "ossec.conf is as it was before install");
    let files = snapshot(tree.path());
    let backups: Vec<&String> = files
        .keys()
        .filter(|k| k.starts_with("etc/ossec.conf.repute-backup-"))
        .collect();
    assert_eq!(backups.len(), 2, "install's and uninstall's: {backups:?}");
    assert!(
        backups
            .iter()
            .any(|b| files[*b] == conf_installed.as_bytes()),
        "the backup is the file as it was before uninstall"
    );
    for gone in [
        "integrations/custom-abuseipdb",
        "active-response/bin/repute-block",
        "etc/rules/repute_abuseipdb_rules.xml",
        "var/repute/",
    ] {
        assert!(!files.contains_key(gone), "{gone} is still there");
    }
    assert_eq!(
        files.get("etc/repute/abuseipdb.key").map(Vec::as_slice),
        Some(format!("{KEY}\n").as_bytes()),
        "the key stays"
    );

    let again = repute(&tree, &["uninstall"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("nothing to do"), "{}", text(&again));
}

#[test]
fn remove_key_removes_the_key_too() {
    let tree = WazuhTree::new();
    installed(&tree);
    let out = repute(&tree, &["uninstall", "--remove-key"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("removed etc/repute/abuseipdb.key"),
        "{}",
        text(&out)
    );
    assert!(!tree.path().join("etc/repute").exists());
}

#[test]
fn dry_run_shows_the_diff_and_changes_nothing() {
    let tree = WazuhTree::new();
    installed(&tree);
    let before = snapshot(tree.path());
    let out = repute(&tree, &["uninstall", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("--- a/etc/ossec.conf"), "{said}");
    assert!(
        said.contains("-    <name>custom-abuseipdb</name>"),
        "{said}"
    );
    assert!(said.contains("-    <name>repute-block</name>"), "{said}");
    assert!(
        said.contains("# remove integrations/custom-abuseipdb\n"),
        "{said}"
    );
    assert!(said.ends_with("dry run: nothing was changed\n"), "{said}");
    assert_eq!(snapshot(tree.path()), before);
}

#[test]
fn someone_elses_program_and_its_block_stay() {
    let tree = WazuhTree::new();
    let script = tree.path().join("integrations/custom-abuseipdb.py");
    std::fs::write(&script, "#!/usr/bin/env python3\nprint('blog')\n").expect("script");
    let conf = OSSEC_CONF.replace(
        "\n  <ruleset>",
        "\n  <integration>\n    <name>custom-abuseipdb.py</name>\n    <rule_id>100001</rule_id>\n  </integration>\n\n  <ruleset>",
    );
    std::fs::write(tree.path().join("etc/ossec.conf"), &conf).expect("conf");
    let out = repute(&tree, &["uninstall"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        text(&out),
        "note: kept the <integration> custom-abuseipdb.py: integrations/custom-abuseipdb.py is \
         not repute\nnothing to do: repute is not installed in {}\n"
            .replace("{}", &tree.path().display().to_string())
    );
    assert_eq!(
        std::fs::read_to_string(tree.path().join("etc/ossec.conf")).expect("conf"),
        conf
    );
    assert!(script.exists());
}

#[test]
fn a_missing_home_says_use_wazuh_dir() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(env!("CARGO_BIN_EXE_repute"))
        .args(["wazuh", "uninstall", "--wazuh-dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.ends_with("use --wazuh-dir to name the Wazuh home\n"),
        "{err}"
    );
}

/// An `ossec.conf` that starts with a UTF-8 byte-order mark (an editor on Windows wrote it):
/// uninstall cut 3 bytes early, because the parser's offsets start after the mark. Now the
/// file is as it was before install, mark and all.
#[test]
fn a_byte_order_mark_is_kept_and_the_file_is_as_before_install() {
    let tree = WazuhTree::new();
    let conf_path = tree.path().join("etc/ossec.conf");
    // Tab-indented: with two spaces, a cut 3 bytes early happened to land on the blank line
    // install put before its block, and whole lines were cut all the same.
    let tabbed: String = OSSEC_CONF
        .split_inclusive('\n')
        .map(|line| {
            let spaces = line.len() - line.trim_start_matches(' ').len();
            format!(
                "{}{}",
                "\t".repeat(spaces / 2),
                &line[spaces - spaces % 2..]
            )
        })
        .collect();
    let before = format!("\u{feff}{tabbed}");
    std::fs::write(&conf_path, &before).expect("conf");
    installed(&tree);
    let conf_installed = std::fs::read_to_string(&conf_path).expect("conf");
    assert!(conf_installed.contains("<name>custom-abuseipdb</name>"));

    let out = repute(&tree, &["uninstall"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&conf_path).expect("conf"),
        before,
        "ossec.conf is as it was before install, byte-order mark kept"
    );
    let backups = backups(tree.path());
    assert!(
        backups.iter().any(|b| *b == conf_installed.as_bytes()),
        "uninstall's backup is the file as it was before uninstall"
    );
}

/// A symlinked `ossec.conf` (configuration management keeps the real file elsewhere) is
/// edited where it points, the link stays, and the backup sits beside the link, as install
/// does it.
#[test]
fn a_symlinked_ossec_conf_is_edited_where_it_points() {
    let tree = WazuhTree::new();
    let managed = tree.path().join("tmp/managed-ossec.conf");
    std::fs::write(&managed, OSSEC_CONF).expect("conf");
    let conf = tree.path().join("etc/ossec.conf");
    std::fs::remove_file(&conf).expect("rm");
    std::os::unix::fs::symlink(&managed, &conf).expect("link");
    installed(&tree);
    let conf_installed = std::fs::read_to_string(&managed).expect("conf");
    assert!(conf_installed.contains("<name>custom-abuseipdb</name>"));

    let out = repute(&tree, &["uninstall"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!(
            "removed repute's blocks from etc/ossec.conf (a symlink: edited {})",
            managed.display()
        )),
        "{said}"
    );
    let meta = std::fs::symlink_metadata(&conf).expect("stat");
    assert!(meta.file_type().is_symlink(), "the link stays a link");
    assert_eq!(std::fs::read_link(&conf).expect("link"), managed);
    assert_eq!(std::fs::read_to_string(&managed).expect("conf"), OSSEC_CONF);
    assert!(
        backups(tree.path())
            .iter()
            .any(|b| *b == conf_installed.as_bytes()),
        "the backup, beside the link, is the file as it was before uninstall"
    );
}

/// Every name uninstall's backup could take this minute is taken: none is overwritten, and
/// the backup lands under a free name.
#[test]
fn a_backup_never_replaces_another() {
    let tree = WazuhTree::new();
    installed(&tree);
    let conf_installed = std::fs::read(tree.path().join("etc/ossec.conf")).expect("conf");
    let etc = tree.path().join("etc");
    let now = jiff::Timestamp::now();
    let mut taken = Vec::new();
    for s in 0..30 {
        let stamp = (now + jiff::SignedDuration::from_secs(s))
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let path = etc.join(format!("ossec.conf.repute-backup-{stamp}"));
        if !path.exists() {
            std::fs::write(&path, "an earlier backup\n").expect("backup");
            taken.push(path);
        }
    }
    let out = repute(&tree, &["uninstall"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for path in &taken {
        assert_eq!(
            std::fs::read_to_string(path).expect("backup"),
            "an earlier backup\n"
        );
    }
    assert!(
        backups(tree.path()).contains(&conf_installed),
        "uninstall's backup is under a free name"
    );
}

/// The contents of every `etc/ossec.conf.repute-backup-*`.
fn backups(root: &Path) -> Vec<Vec<u8>> {
    snapshot(root)
        .into_iter()
        .filter(|(k, _)| k.starts_with("etc/ossec.conf.repute-backup-"))
        .map(|(_, v)| v)
        .collect()
}
