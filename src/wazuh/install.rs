//! `repute wazuh install`: binary, rules, key and `<integration>` block into a Wazuh home.
//!
//! Install first builds a [`Plan`] (what differs from the wanted state), then either prints it
//! as a diff (`--dry-run`) or applies it. Running it twice changes nothing the second time.
//!
//! What it puts where (paths relative to the Wazuh home, `root:<group>` with `<group>` =
//! `wazuh`, else `ossec` on pre-4.3 installs, else the group owning `etc/ossec.conf`):
//!
//! | path | mode | what |
//! |---|---|---|
//! | `integrations/<name>` | 0750 | this binary; `<name>` is `custom-abuseipdb`, or the name of an existing `custom-abuseipdb*` block (the blog's `custom-abuseipdb.py` is replaced in place) |
//! | `etc/rules/repute_abuseipdb_rules.xml` | 0660 | the shipped rules |
//! | `etc/repute/abuseipdb.key` | 0640 | the API key from `--api-key-file` |
//! | `var/repute/` | 2770 | the cache directory (integratord's children run as `wazuh`) |
//! | `etc/ossec.conf` | kept | the `<integration>` block, unless one exists; backup first |
//!
//! With `--active-response` ([`ActiveResponse`]), also:
//!
//! | path | mode | what |
//! |---|---|---|
//! | `active-response/`, `active-response/bin/` | 0750 | as Wazuh makes them |
//! | `active-response/bin/repute-block` | 0750 | this binary, which execd runs |
//! | `etc/ossec.conf` | kept | the `<command>` named `repute-block` and an `<active-response>` running it on the enrichment rules (see [`super::active_response::DEFAULT_BLOCK_RULES`]), each unless one exists |
//!
//! The key goes to a file, not to `<api_key>`: integratord passes `<api_key>` on the command
//! line (visible in `ps`) and prints the whole command line into `ossec.log` when the program
//! cannot be executed. The integration reads the file when ossec.conf gives no key. Nothing
//! here restarts the manager; the caller tells the user to.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::active_response::{self as ar, COMMAND_NAME};
use super::diff;
use super::home::{ACTIVE_RESPONSE_BIN_DIR, INTEGRATIONS_DIR};
use super::options::DEFAULT_KEY_FILE;
use super::ossec_conf::OssecConf;
use super::ruleset::{self, INTEGRATION_BLOCK, RULE_FILES};
use crate::config::read_key_file;

/// The name integratord runs unless ossec.conf already names another.
pub const DEFAULT_NAME: &str = "custom-abuseipdb";
/// The cache directory inside the home.
pub const CACHE_DIR: &str = "var/repute";

/// Why an install could not be planned or applied.
#[derive(Debug, Error)]
pub enum InstallError {
    #[error("{0} does not look like a Wazuh manager home: {1} is missing")]
    NotWazuh(String, String),
    #[error("{path}: {detail}")]
    Invalid { path: String, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub wazuh_dir: PathBuf,
    pub api_key_file: Option<PathBuf>,
    /// The program to install (the running executable).
    pub binary: PathBuf,
    /// Also install the program as an active response.
    pub active_response: Option<ActiveResponse>,
}

/// The active response to wire up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveResponse {
    /// The `<timeout>` (and the kernel block's `--for`), in seconds.
    pub timeout_secs: u64,
    /// The enrichment rules that trigger it.
    pub rules_id: Vec<u32>,
    /// `--min-score N` for the command's `<extra_args>`: a further bar on the alert's score.
    pub min_score: Option<u8>,
}

impl Default for ActiveResponse {
    fn default() -> Self {
        ActiveResponse {
            timeout_secs: ar::DEFAULT_TIMEOUT_SECS,
            rules_id: ar::DEFAULT_BLOCK_RULES.to_vec(),
            min_score: None,
        }
    }
}

/// Who owns what is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    pub gid: u32,
    pub group: String,
    /// False when not running as root: ownership is left as it falls.
    pub chown: bool,
}

/// The owner a file should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// root and the Wazuh group.
    RootGroup,
    /// Whatever the file has (ossec.conf).
    Keep,
}

/// One thing to do.
#[derive(Debug, Clone)]
enum Step {
    Dir {
        path: PathBuf,
        mode: u32,
    },
    File {
        path: PathBuf,
        contents: Vec<u8>,
        old: Option<Vec<u8>>,
        mode: Option<u32>,
        owner: Owner,
        kind: FileKind,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Binary,
    Text,
    /// Never shown.
    Secret,
    /// Text, backed up before it is replaced.
    Config,
}

/// Everything install would do, and what the user should know.
#[derive(Debug, Clone)]
pub struct Plan {
    home: PathBuf,
    steps: Vec<Step>,
    pub ownership: Ownership,
    pub notes: Vec<String>,
    pub name: String,
}

/// Works out what differs from the installed state.
pub fn plan(req: &Request) -> Result<Plan, InstallError> {
    let home = &req.wazuh_dir;
    let conf_path = home.join("etc/ossec.conf");
    if !conf_path.is_file() {
        return Err(InstallError::NotWazuh(
            home.display().to_string(),
            "etc/ossec.conf".into(),
        ));
    }
    let conf_text = fs::read_to_string(&conf_path).map_err(io_err(&conf_path))?;
    let conf = OssecConf::parse(&conf_text).map_err(|detail| InstallError::Invalid {
        path: conf_path.display().to_string(),
        detail,
    })?;
    let ownership = resolve_ownership(&conf_path);
    let mut plan = Plan {
        home: home.clone(),
        steps: Vec::new(),
        notes: ownership_notes(&ownership),
        name: DEFAULT_NAME.into(),
        ownership,
    };
    plan.plan_ossec_conf(conf, &conf_path, req)?;
    let binary = fs::read(&req.binary).map_err(io_err(&req.binary))?;
    plan.plan_dir(INTEGRATIONS_DIR, 0o750)?;
    let name = plan.name.clone();
    plan.plan_program(INTEGRATIONS_DIR, &name, &binary)?;
    if req.active_response.is_some() {
        plan.plan_dir("active-response", 0o750)?;
        plan.plan_dir(ACTIVE_RESPONSE_BIN_DIR, 0o750)?;
        plan.plan_program(ACTIVE_RESPONSE_BIN_DIR, COMMAND_NAME, &binary)?;
    }
    plan.plan_rules()?;
    plan.plan_key(req.api_key_file.as_deref())?;
    plan.plan_dir(CACHE_DIR, 0o2770)?;
    Ok(plan)
}

impl Plan {
    /// True when everything is already in place.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    fn rel(&self, path: &Path) -> String {
        path.strip_prefix(&self.home)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Every `ossec.conf` edit, applied one after the other to the text, as one step.
    fn plan_ossec_conf(
        &mut self,
        conf: OssecConf,
        path: &Path,
        req: &Request,
    ) -> Result<(), InstallError> {
        let old = conf.text().to_string();
        let mut conf = conf;
        if let Some(block) = self.integration_edit(&conf, req) {
            conf = reparse(&conf.with_integration(block), path)?;
        }
        if let Some(wanted) = &req.active_response {
            conf = self.active_response_edits(conf, wanted, path)?;
        }
        if conf.text() == old {
            return Ok(());
        }
        check_edited(&conf, req, path)?;
        self.steps.push(Step::File {
            path: path.to_path_buf(),
            contents: conf.text().as_bytes().to_vec(),
            old: Some(old.into_bytes()),
            mode: None,
            owner: Owner::Keep,
            kind: FileKind::Config,
        });
        Ok(())
    }

    /// The `<integration>` block to add, unless one of ours is there already.
    fn integration_edit(&mut self, conf: &OssecConf, req: &Request) -> Option<&'static str> {
        let existing = conf.integrations();
        let Some(ours) = existing.iter().find(|i| i.name.starts_with(DEFAULT_NAME)) else {
            return Some(INTEGRATION_BLOCK);
        };
        self.name = ours.name.clone();
        if ours.has_api_key && req.api_key_file.is_some() {
            self.notes.push(format!(
                "the <integration> block for {} has an <api_key>, which wins over {DEFAULT_KEY_FILE}: remove it to keep the key out of `ps` and ossec.log",
                ours.name
            ));
        }
        None
    }

    /// Adds the `<command>` and the `<active-response>` for `repute-block`, each unless the
    /// file has one (an existing block is the administrator's: kept, with a note when it
    /// differs from what was asked).
    fn active_response_edits(
        &mut self,
        conf: OssecConf,
        wanted: &ActiveResponse,
        path: &Path,
    ) -> Result<OssecConf, InstallError> {
        let mut conf = conf;
        if !conf.commands().iter().any(|n| n == COMMAND_NAME) {
            let extra = wanted
                .min_score
                .map(|n| format!("--min-score {n}"))
                .unwrap_or_default();
            let block = ar::command_block(wanted.timeout_secs, &extra);
            conf = reparse(&conf.with_section("command", &block), path)?;
        }
        let existing = conf.active_responses();
        let ours = existing
            .iter()
            .find(|a| a.command.as_deref() == Some(COMMAND_NAME));
        match ours {
            None => {
                let block = ar::active_response_block(wanted.timeout_secs, &wanted.rules_id);
                conf = reparse(&conf.with_section("active-response", &block), path)?;
                self.notes.push(format!(
                    "the active response runs where the attacked agent is (<location>local</location>): put this program at active-response/bin/{COMMAND_NAME} on the agents too"
                ));
            }
            Some(a) if a.timeout.as_deref() != Some(&wanted.timeout_secs.to_string()) => {
                self.notes.push(format!(
                    "the existing <active-response> for {COMMAND_NAME} is kept (timeout {}); edit etc/ossec.conf to change it",
                    a.timeout.as_deref().unwrap_or("none")
                ));
            }
            Some(_) => {}
        }
        Ok(conf)
    }

    /// This binary as `<dir>/<name>`.
    fn plan_program(&mut self, dir: &str, name: &str, binary: &[u8]) -> Result<(), InstallError> {
        let path = self.home.join(dir).join(name);
        self.plan_file(path, binary.to_vec(), 0o750, FileKind::Binary)
    }

    fn plan_rules(&mut self) -> Result<(), InstallError> {
        for file in RULE_FILES {
            ruleset::lint(file.text).map_err(|p| InstallError::Invalid {
                path: file.name.into(),
                detail: p.join("; "),
            })?;
            let path = self.home.join("etc/rules").join(file.name);
            self.plan_file(path, file.text.as_bytes().to_vec(), 0o660, FileKind::Text)?;
        }
        self.note_duplicate_rule_ids();
        Ok(())
    }

    /// The blog's rules use the same ids; Wazuh keeps only one definition of an id.
    fn note_duplicate_rule_ids(&mut self) {
        let ours: Vec<&str> = RULE_FILES.iter().map(|f| f.name).collect();
        let Ok(entries) = fs::read_dir(self.home.join("etc/rules")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if ours.contains(&name.as_str()) || !name.ends_with(".xml") {
                continue;
            }
            let text = fs::read_to_string(entry.path()).unwrap_or_default();
            for id in ["100001", "100002"] {
                if text.contains(&format!("id=\"{id}\"")) {
                    self.notes.push(format!(
                        "etc/rules/{name} also defines rule {id} (the blog's rules?): Wazuh keeps only one definition; remove the old one"
                    ));
                }
            }
        }
    }

    fn plan_key(&mut self, key_file: Option<&Path>) -> Result<(), InstallError> {
        let path = self.home.join(DEFAULT_KEY_FILE);
        let Some(source) = key_file else {
            if !path.exists() {
                self.notes.push(format!(
                    "no API key installed: rerun with --api-key-file FILE, or put the key in {DEFAULT_KEY_FILE}"
                ));
            }
            return Ok(());
        };
        let key = read_key_file(source).map_err(|e| InstallError::Invalid {
            path: source.display().to_string(),
            detail: e.to_string(),
        })?;
        self.plan_dir("etc/repute", 0o750)?;
        let contents = format!("{}\n", key.expose()).into_bytes();
        self.plan_file(path, contents, 0o640, FileKind::Secret)
    }

    fn plan_dir(&mut self, rel: &str, mode: u32) -> Result<(), InstallError> {
        let path = self.home.join(rel);
        let in_place = match fs::metadata(&path) {
            Ok(m) if m.is_dir() => self.attributes_match(&m, mode, Owner::RootGroup),
            Ok(_) => {
                return Err(InstallError::Invalid {
                    path: path.display().to_string(),
                    detail: "exists and is not a directory".into(),
                });
            }
            Err(_) => false,
        };
        if !in_place {
            self.steps.push(Step::Dir { path, mode });
        }
        Ok(())
    }

    fn plan_file(
        &mut self,
        path: PathBuf,
        contents: Vec<u8>,
        mode: u32,
        kind: FileKind,
    ) -> Result<(), InstallError> {
        let old = fs::read(&path).ok();
        let attrs_ok = fs::metadata(&path)
            .map(|m| self.attributes_match(&m, mode, Owner::RootGroup))
            .unwrap_or(false);
        if old.as_deref() != Some(contents.as_slice()) || !attrs_ok {
            self.steps.push(Step::File {
                path,
                contents,
                old,
                mode: Some(mode),
                owner: Owner::RootGroup,
                kind,
            });
        }
        Ok(())
    }

    fn attributes_match(&self, m: &fs::Metadata, mode: u32, owner: Owner) -> bool {
        let mode_ok = m.mode() & 0o7777 == mode;
        let owner_ok = owner == Owner::Keep
            || !self.ownership.chown
            || (m.uid() == 0 && m.gid() == self.ownership.gid);
        mode_ok && owner_ok
    }

    /// The plan as a unified diff (secrets and binaries described, never shown).
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            match step {
                Step::Dir { path, mode } => {
                    out.push_str(&format!(
                        "# directory {} (mode {mode:04o})\n",
                        self.rel(path)
                    ));
                }
                Step::File {
                    path,
                    contents,
                    old,
                    mode,
                    kind,
                    ..
                } => out.push_str(&self.file_diff(path, contents, old.as_deref(), *mode, *kind)),
            }
        }
        out
    }

    fn file_diff(
        &self,
        path: &Path,
        contents: &[u8],
        old: Option<&[u8]>,
        mode: Option<u32>,
        kind: FileKind,
    ) -> String {
        let rel = self.rel(path);
        let mode_text = mode.map_or("mode kept".into(), |m| format!("mode {m:04o}"));
        let what = if old.is_some() { "replace" } else { "create" };
        match kind {
            FileKind::Binary => format!(
                "# {what} {rel}: this program ({} bytes, {mode_text})\n",
                contents.len()
            ),
            FileKind::Secret => format!("# {what} {rel}: the API key ({mode_text})\n"),
            FileKind::Text | FileKind::Config => {
                let old_text = old.map(String::from_utf8_lossy).unwrap_or_default();
                let new_text = String::from_utf8_lossy(contents);
                let old_name = if old.is_some() {
                    format!("a/{rel}")
                } else {
                    "/dev/null".into()
                };
                let body = diff::unified(&old_text, &new_text, &old_name, &format!("b/{rel}"));
                if body.is_empty() {
                    format!("# {rel}: set {mode_text}\n")
                } else {
                    body
                }
            }
        }
    }

    /// Applies the plan; returns one line per change made.
    pub fn apply(&self) -> Result<Vec<String>, InstallError> {
        let mut done = Vec::new();
        for step in &self.steps {
            done.push(match step {
                Step::Dir { path, mode } => self.apply_dir(path, *mode)?,
                Step::File {
                    path,
                    contents,
                    old,
                    mode,
                    owner,
                    kind,
                } => self.apply_file(path, contents, old.is_some(), *mode, *owner, *kind)?,
            });
        }
        Ok(done)
    }

    fn apply_dir(&self, path: &Path, mode: u32) -> Result<String, InstallError> {
        fs::create_dir_all(path).map_err(io_err(path))?;
        self.set_attributes(path, Some(mode), Owner::RootGroup)?;
        Ok(format!("directory {} (mode {mode:04o})", self.rel(path)))
    }

    fn apply_file(
        &self,
        path: &Path,
        contents: &[u8],
        existed: bool,
        mode: Option<u32>,
        owner: Owner,
        kind: FileKind,
    ) -> Result<String, InstallError> {
        let mut line = format!(
            "{} {}",
            if existed { "updated" } else { "installed" },
            self.rel(path)
        );
        // ossec.conf, and a script being replaced by this program (the blog's .py).
        let replaces_script =
            kind == FileKind::Binary && fs::read(path).is_ok_and(|old| old.starts_with(b"#!"));
        if (kind == FileKind::Config && existed) || replaces_script {
            let backup = backup(path)?;
            line.push_str(&format!(" (backup: {})", self.rel(&backup)));
        }
        let (keep_mode, keep_owner) = match fs::metadata(path) {
            Ok(m) => (Some(m.mode() & 0o7777), Some((m.uid(), m.gid()))),
            Err(_) => (None, None),
        };
        // Write beside, then rename: integratord may be running the old program right now,
        // and a reader must never see half a file.
        let tmp = path.with_extension("repute-tmp");
        fs::write(&tmp, contents).map_err(io_err(&tmp))?;
        let result = self
            .set_attributes(&tmp, mode.or(keep_mode), owner)
            .and_then(|()| match (owner, keep_owner) {
                (Owner::Keep, Some((uid, gid))) if self.ownership.chown => chown(&tmp, uid, gid),
                _ => Ok(()),
            })
            .and_then(|()| fs::rename(&tmp, path).map_err(io_err(path)));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(|()| line)
    }

    fn set_attributes(
        &self,
        path: &Path,
        mode: Option<u32>,
        owner: Owner,
    ) -> Result<(), InstallError> {
        if owner == Owner::RootGroup && self.ownership.chown {
            chown(path, 0, self.ownership.gid)?;
        }
        if let Some(mode) = mode {
            // After chown, which clears setuid/setgid bits.
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))?;
        }
        Ok(())
    }
}

/// The edited text, which must still parse (Wazuh must be able to read what we leave).
fn reparse(text: &str, path: &Path) -> Result<OssecConf, InstallError> {
    OssecConf::parse(text).map_err(|detail| InstallError::Invalid {
        path: path.display().to_string(),
        detail: format!("the edited file would not parse: {detail}"),
    })
}

/// The edited file must show every block the request asked for.
fn check_edited(conf: &OssecConf, req: &Request, path: &Path) -> Result<(), InstallError> {
    let missing = |what: &str| InstallError::Invalid {
        path: path.display().to_string(),
        detail: format!("the edited file does not show the {what}"),
    };
    if !conf
        .integrations()
        .iter()
        .any(|i| i.name.starts_with(DEFAULT_NAME))
    {
        return Err(missing("<integration> block"));
    }
    if req.active_response.is_some() {
        if !conf.commands().iter().any(|n| n == COMMAND_NAME) {
            return Err(missing("<command> block"));
        }
        let runs_ours = |a: &super::ossec_conf::ExistingActiveResponse| {
            a.command.as_deref() == Some(COMMAND_NAME)
        };
        if !conf.active_responses().iter().any(runs_ours) {
            return Err(missing("<active-response> block"));
        }
    }
    Ok(())
}

/// Copies `path` to `path.repute-backup-<UTC time>` with its mode and owner.
fn backup(path: &Path) -> Result<PathBuf, InstallError> {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".repute-backup-{stamp}"));
    let target = path.with_file_name(name);
    fs::copy(path, &target).map_err(io_err(&target))?;
    if let Ok(m) = fs::metadata(path) {
        let _ = chown(&target, m.uid(), m.gid());
    }
    Ok(target)
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), InstallError> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io_err(path))
}

/// The group that should own installed files.
fn resolve_ownership(conf_path: &Path) -> Ownership {
    // SAFETY: geteuid has no preconditions.
    let chown = unsafe { libc::geteuid() } == 0;
    for name in ["wazuh", "ossec"] {
        if let Some(gid) = group_id(name) {
            return Ownership {
                gid,
                group: name.into(),
                chown,
            };
        }
    }
    let gid = fs::metadata(conf_path).map(|m| m.gid()).unwrap_or(0);
    Ownership {
        gid,
        group: format!("gid {gid}"),
        chown,
    }
}

fn ownership_notes(o: &Ownership) -> Vec<String> {
    let mut notes = Vec::new();
    if !matches!(o.group.as_str(), "wazuh" | "ossec") {
        notes.push(format!(
            "neither a `wazuh` nor an `ossec` group exists: using the group of etc/ossec.conf ({})",
            o.group
        ));
    }
    if !o.chown {
        notes.push("not running as root: file owners are left as they are".into());
    }
    notes
}

/// The id of a group, by name.
fn group_id(name: &str) -> Option<u32> {
    let c_name = std::ffi::CString::new(name).ok()?;
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buf` outlives it; getgrnam_r is the
    // re-entrant form and writes only into `group` and `buf`.
    let rc = unsafe {
        libc::getgrnam_r(
            c_name.as_ptr(),
            &mut group,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some(group.gr_gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_group_lookup_works_and_unknown_groups_are_none() {
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("no-such-group-repute"), None);
    }
}
