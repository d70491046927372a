//! `repute wazuh uninstall`: the reverse of [`super::install`], with a backup.
//!
//! It takes out of `etc/ossec.conf` the `<integration>` block of repute (a `custom-abuseipdb*`
//! name whose program in `integrations/` is this program, or is gone), with the comment install
//! put above it, and the `<command>` and `<active-response>` blocks of `repute-block`; the rest
//! of the file stays byte for byte, and a copy of the file as it was is kept beside it
//! (`ossec.conf.repute-backup-<UTC time>`). Then it removes the programs it installed
//! (`integrations/<name>`, `active-response/bin/repute-block`, each only when it is repute),
//! the shipped rules (a copy is kept when they were edited) and the cache (`var/repute/`).
//!
//! The file is read and written as install does ([`super::ossec_conf::OssecConf`],
//! `install::replace_config`): a byte-order mark stays, a symlinked `ossec.conf` is
//! edited where it points and stays a link, and a backup never replaces another.
//!
//! The API key (`etc/repute/abuseipdb.key`) stays unless asked (`--remove-key`): it is the
//! one thing that cannot be installed again from the package. A program of the same name that
//! is not repute (the blog's Python script) is left alone, with its block, and said so.
//! Nothing restarts the manager.

use std::fs;
use std::path::{Path, PathBuf};

use memchr::memmem;

use super::active_response::COMMAND_NAME;
use super::diff;
use super::home::{ACTIVE_RESPONSE_BIN_DIR, INTEGRATIONS_DIR};
use super::install::{
    CACHE_DIR, DEFAULT_NAME, InstallError, backup, io_err, read_manager_conf, replace_config,
};
use super::options::DEFAULT_KEY_FILE;
use super::ossec_conf::OssecConf;
use super::ruleset::RULE_FILES;
use super::xml::Element;

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub wazuh_dir: PathBuf,
    /// Also remove the API key file.
    pub remove_key: bool,
}

/// One change to make.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Rewrite `etc/ossec.conf` (after a backup).
    Conf { old: String, new: String },
    /// Remove a file (or symlink); `backup` keeps a copy first.
    Remove { path: PathBuf, backup: bool },
    /// Remove the cache directory and the store files in it.
    Cache { dir: PathBuf },
    /// Remove a directory if it is empty.
    EmptyDir { path: PathBuf },
}

/// What an uninstall would change.
#[derive(Debug, Clone)]
pub struct Plan {
    home: PathBuf,
    steps: Vec<Step>,
    pub notes: Vec<String>,
}

/// Works out what to take out of the Wazuh home.
pub fn plan(req: &Request) -> Result<Plan, InstallError> {
    let home = &req.wazuh_dir;
    let (conf_path, text) = read_manager_conf(home)?;
    let conf = OssecConf::parse(&text).map_err(|detail| InstallError::Invalid {
        path: conf_path.display().to_string(),
        detail,
    })?;
    let mut plan = Plan {
        home: home.clone(),
        steps: Vec::new(),
        notes: Vec::new(),
    };
    let mut cuts = Vec::new();
    for el in repute_sections(&conf) {
        match el.name.as_str() {
            "integration" => {
                let name = child_text(el, "name");
                if !name.starts_with(DEFAULT_NAME) {
                    continue;
                }
                let program = home.join(INTEGRATIONS_DIR).join(&name);
                match is_repute(&program)? {
                    Some(false) => plan.notes.push(format!(
                        "kept the <integration> {name}: {INTEGRATIONS_DIR}/{name} is not repute"
                    )),
                    ours => {
                        cuts.push(el);
                        if ours == Some(true) {
                            plan.remove(program, false);
                        }
                    }
                }
            }
            "command" if child_text(el, "name") == COMMAND_NAME => cuts.push(el),
            "active-response" if child_text(el, "command") == COMMAND_NAME => cuts.push(el),
            _ => {}
        }
    }
    let new = conf.with_body(&cut_blocks(conf.body(), &cuts));
    if new != text {
        plan.steps.insert(0, Step::Conf { old: text, new });
    }
    let ar_program = home.join(ACTIVE_RESPONSE_BIN_DIR).join(COMMAND_NAME);
    if is_repute(&ar_program)? == Some(true) {
        plan.remove(ar_program, false);
    }
    for rule in RULE_FILES {
        let path = home.join("etc/rules").join(rule.name);
        if let Ok(current) = fs::read(&path) {
            let edited = current != rule.text.as_bytes();
            plan.remove(path, edited);
        }
    }
    let cache = home.join(CACHE_DIR);
    if cache.is_dir() {
        plan.steps.push(Step::Cache { dir: cache });
    }
    let key = home.join(DEFAULT_KEY_FILE);
    if key.exists() {
        if req.remove_key {
            plan.remove(key.clone(), false);
            if let Some(dir) = key.parent() {
                plan.steps.push(Step::EmptyDir {
                    path: dir.to_path_buf(),
                });
            }
        } else {
            plan.notes.push(format!(
                "kept the API key {DEFAULT_KEY_FILE} (--remove-key removes it)"
            ));
        }
    }
    Ok(plan)
}

impl Plan {
    /// True when nothing of repute is left to remove.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    fn remove(&mut self, path: PathBuf, backup: bool) {
        self.steps.push(Step::Remove { path, backup });
    }

    fn rel(&self, path: &Path) -> String {
        path.strip_prefix(&self.home)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// The plan as a diff of `ossec.conf` and one line per file removed.
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            match step {
                Step::Conf { old, new } => out.push_str(&diff::unified(
                    old,
                    new,
                    "a/etc/ossec.conf",
                    "b/etc/ossec.conf",
                )),
                Step::Remove { path, backup } => {
                    let kept = if *backup {
                        " (edited: a copy is kept)"
                    } else {
                        ""
                    };
                    out.push_str(&format!("# remove {}{kept}\n", self.rel(path)));
                }
                Step::Cache { dir } => {
                    out.push_str(&format!("# remove the cache {}/\n", self.rel(dir)));
                }
                Step::EmptyDir { path } => {
                    out.push_str(&format!("# remove {}/ if empty\n", self.rel(path)));
                }
            }
        }
        out
    }

    /// Applies the plan; returns one line per change made.
    pub fn apply(&self) -> Result<Vec<String>, InstallError> {
        let mut done = Vec::new();
        for step in &self.steps {
            match step {
                Step::Conf { new, .. } => {
                    let path = self.home.join("etc/ossec.conf");
                    let replaced = replace_config(&path, new.as_bytes())?;
                    let link = match &replaced.symlink_target {
                        Some(target) => format!(" (a symlink: edited {})", target.display()),
                        None => String::new(),
                    };
                    done.push(format!(
                        "removed repute's blocks from etc/ossec.conf{link} (backup: {})",
                        self.rel(&replaced.backup)
                    ));
                }
                Step::Remove { path, backup: keep } => {
                    let note = if *keep {
                        format!(" (edited; copy: {})", self.rel(&backup(path, path)?))
                    } else {
                        String::new()
                    };
                    remove_file(path)?;
                    done.push(format!("removed {}{note}", self.rel(path)));
                }
                Step::Cache { dir } => {
                    remove_cache(dir)?;
                    done.push(format!("removed the cache {}/", self.rel(dir)));
                }
                Step::EmptyDir { path } => {
                    if fs::remove_dir(path).is_ok() {
                        done.push(format!("removed {}/", self.rel(path)));
                    }
                }
            }
        }
        Ok(done)
    }
}

/// The sections repute may have put in the file, in file order.
fn repute_sections(conf: &OssecConf) -> Vec<&Element> {
    let mut found: Vec<&Element> = ["integration", "command", "active-response"]
        .into_iter()
        .flat_map(|name| conf.section_elements(name))
        .collect();
    found.sort_by_key(|el| el.start);
    found
}

fn child_text(el: &Element, name: &str) -> String {
    el.child(name).map(|c| c.text.clone()).unwrap_or_default()
}

/// `Some(true)` when `path` is this program (an ELF file that carries repute's command
/// names), `Some(false)` when it is something else, `None` when there is no such file.
fn is_repute(path: &Path) -> Result<Option<bool>, InstallError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(InstallError::Io {
                path: path.display().to_string(),
                source: e,
            });
        }
    };
    // Strings every repute build carries; the blog's script is not ELF.
    let ours = bytes.starts_with(b"\x7fELF")
        && memmem::find(&bytes, COMMAND_NAME.as_bytes()).is_some()
        && memmem::find(&bytes, b"api.abuseipdb.com").is_some();
    Ok(Some(ours))
}

/// `text` without the lines of each element in `cuts`, each with the `<!-- repute…` comment
/// right above it, and without the blank line install put before it when that would leave
/// two blank lines (or a blank line before a closing tag) where there was none.
pub fn cut_blocks(text: &str, cuts: &[&Element]) -> String {
    let mut ranges: Vec<(usize, usize)> = cuts
        .iter()
        .map(|el| {
            let mut start = line_start(text, el.start);
            let before = text[..start].trim_end();
            if before.ends_with("-->")
                && let Some(open) = before.rfind("<!--")
                && text[open..].starts_with("<!-- repute")
            {
                start = line_start(text, open);
            }
            (start, line_end(text, el.end))
        })
        .collect();
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in ranges {
        if start < at {
            continue;
        }
        out.push_str(&text[at..start]);
        at = end;
        // The blank line install inserted before the block: drop it when the cut leaves a
        // blank line (or the end of the section) right after it.
        let rest = &text[at..];
        let next_line = rest.split_inclusive('\n').next().unwrap_or("");
        let next_blank_or_closing =
            next_line.trim().is_empty() || next_line.trim_start().starts_with("</");
        if next_blank_or_closing && ends_with_blank_line(&out) {
            let trimmed = out.trim_end_matches([' ', '\t', '\r']).len();
            out.truncate(trimmed);
            if out.ends_with("\n\n") {
                out.pop();
            }
        }
    }
    out.push_str(&text[at..]);
    out
}

fn ends_with_blank_line(text: &str) -> bool {
    let body = text.trim_end_matches([' ', '\t', '\r']);
    body.ends_with("\n\n") || body.is_empty()
}

/// The start of the line of `pos` when only blanks precede it there, else `pos`.
fn line_start(text: &str, pos: usize) -> usize {
    let start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    if text[start..pos].trim().is_empty() {
        start
    } else {
        pos
    }
}

/// Just past the newline ending the line of `pos` (or the end of the text).
fn line_end(text: &str, pos: usize) -> usize {
    text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1)
}

fn remove_file(path: &Path) -> Result<(), InstallError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(InstallError::Io {
            path: path.display().to_string(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// The store files repute makes in the cache directory, then the directory when that leaves
/// it empty (anything else in it is not ours and stays).
fn remove_cache(dir: &Path) -> Result<(), InstallError> {
    let entries = fs::read_dir(dir).map_err(io_err(dir))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let store = name.ends_with(".sqlite")
            || name.ends_with(".sqlite-wal")
            || name.ends_with(".sqlite-shm")
            || name.ends_with(".lock");
        if store {
            remove_file(&entry.path())?;
        }
    }
    let _ = fs::remove_dir(dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(text: &str, names: &[&str]) -> String {
        let conf = OssecConf::parse(text).expect("xml");
        let cuts: Vec<&Element> = repute_sections(&conf)
            .into_iter()
            .filter(|e| names.contains(&e.name.as_str()))
            .collect();
        conf.with_body(&cut_blocks(conf.body(), &cuts))
    }

    #[test]
    fn a_block_inserted_between_sections_goes_with_its_comment_and_blank_line() {
        let before = "<ossec_config>\n  <a/>\n\n  <b/>\n</ossec_config>\n";
        let after = "<ossec_config>\n  <a/>\n\n  <!-- repute: x -->\n  <integration>\n    <name>custom-abuseipdb</name>\n  </integration>\n\n  <b/>\n</ossec_config>\n";
        assert_eq!(cut(after, &["integration"]), before);
    }

    #[test]
    fn a_block_inserted_before_the_closing_tag_goes_with_its_blank_line() {
        let before = "<ossec_config>\n  <a/>\n</ossec_config>\n";
        let after = "<ossec_config>\n  <a/>\n\n  <command>\n    <name>repute-block</name>\n  </command>\n</ossec_config>\n";
        assert_eq!(cut(after, &["command"]), before);
    }

    /// The parser's offsets start after a byte-order mark: cut with them as they were,
    /// the cut landed 3 bytes early.
    #[test]
    fn a_byte_order_mark_stays_and_the_cut_lands_on_the_block() {
        let before = "\u{feff}<ossec_config>\n  <a/>\n</ossec_config>\n";
        let after = "\u{feff}<ossec_config>\n  <a/>\n\n  <command>\n    <name>repute-block</name>\n  </command>\n</ossec_config>\n";
        assert_eq!(cut(after, &["command"]), before);
    }

    #[test]
    fn other_comments_and_blocks_stay() {
        let text = "<ossec_config>\n  <!-- mine -->\n  <integration>\n    <name>slack</name>\n  </integration>\n  <a/>\n</ossec_config>\n";
        assert_eq!(cut(text, &[]), text);
        assert_eq!(
            cut(text, &["integration"]),
            "<ossec_config>\n  <!-- mine -->\n  <a/>\n</ossec_config>\n",
            "only a repute comment goes with its block"
        );
    }
}
