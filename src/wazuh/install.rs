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
//! With `--agent` ([`Request::agent`]), for a Wazuh agent home, only the `active-response/`
//! rows above: the program execd runs there when the manager's `<active-response>` reaches
//! that agent. No key (the manager's enrichment already judged the address; `--api-key-file`
//! is refused), no rules, no `<integration>`, and `etc/ossec.conf` is not touched. A home is
//! an agent's when its `etc/ossec.conf` has a `<client>` section (where an agent finds its
//! manager) or it has `bin/wazuh-agentd`.
//!
//! The key goes to a file, not to `<api_key>`: integratord passes `<api_key>` on the command
//! line (visible in `ps`) and prints the whole command line into `ossec.log` when the program
//! cannot be executed. The integration reads the file when ossec.conf gives no key. Nothing
//! here restarts the manager; the caller tells the user to.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::active_response::{self as ar, COMMAND_NAME};
use super::diff;
use super::home::{ACTIVE_RESPONSE_BIN_DIR, INTEGRATIONS_DIR};
use super::options::DEFAULT_KEY_FILE;
use super::ossec_conf::OssecConf;
use super::ruleset::{self, INTEGRATION_BLOCK, RULE_FILES, TRIGGER_RULE};
use super::xml;
use crate::config::read_key_file;

/// The name integratord runs unless ossec.conf already names another.
pub const DEFAULT_NAME: &str = "custom-abuseipdb";
/// The cache directory inside the home.
pub const CACHE_DIR: &str = "var/repute";
/// The last id of the shipped rules.
const LAST_RULE: u32 = 110_118;

/// Why an install could not be planned or applied.
#[derive(Debug, Error)]
pub enum InstallError {
    #[error("{0} does not look like a Wazuh manager home: {1} is missing")]
    NotWazuh(String, String),
    #[error(
        "{0} does not look like a Wazuh agent home: etc/ossec.conf has no <client> section and bin/wazuh-agentd is missing"
    )]
    NotAgent(String),
    #[error(
        "--api-key-file is refused with --agent: an agent needs no API key (the manager's enrichment already judged the address)"
    )]
    KeyOnAgent,
    #[error("{path}: {detail}")]
    Invalid { path: String, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The manager home's `etc/ossec.conf`: its path and text, or why `home` is no manager home.
/// Shared by install and uninstall, so both refuse the same directories in the same words.
pub(crate) fn read_manager_conf(home: &Path) -> Result<(PathBuf, String), InstallError> {
    let conf_path = home.join("etc/ossec.conf");
    if !conf_path.is_file() {
        return Err(InstallError::NotWazuh(
            home.display().to_string(),
            "etc/ossec.conf".into(),
        ));
    }
    let text = fs::read_to_string(&conf_path).map_err(io_err(&conf_path))?;
    Ok((conf_path, text))
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
    /// The home is an agent's: install only `active-response/bin/repute-block`.
    pub agent: bool,
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
    /// The version of the home, when it says.
    pub version: Option<WazuhVersion>,
}

/// A Wazuh version as the home records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WazuhVersion {
    pub major: u32,
    pub minor: u32,
    /// As written (`4.7.5`).
    pub text: String,
    /// The file it was read from, relative to the home.
    pub source: String,
}

impl WazuhVersion {
    /// `<timeout>` and `<retries>` in `<integration>` came with 4.8: 4.7's integratord
    /// refuses to start when it meets them.
    pub fn has_integration_timeout(&self) -> bool {
        (self.major, self.minor) >= (4, 8)
    }
}

/// Where rule ids 100001 and 100002 are defined, and by what.
#[derive(Debug, Clone, Default)]
struct SeedIds {
    /// `file: id` of rules that are neither the blog's nor the stock example: the
    /// administrator's own, never touched.
    foreign_100001: Vec<String>,
}

/// Works out what differs from the installed state.
pub fn plan(req: &Request) -> Result<Plan, InstallError> {
    if req.agent {
        return plan_agent(req);
    }
    let home = &req.wazuh_dir;
    let (conf_path, conf_text) = read_manager_conf(home)?;
    let conf = OssecConf::parse(&conf_text).map_err(|detail| InstallError::Invalid {
        path: conf_path.display().to_string(),
        detail,
    })?;
    let ownership = resolve_ownership(&conf_path);
    let version = detect_version(home);
    let mut plan = Plan {
        home: home.clone(),
        steps: Vec::new(),
        notes: ownership_notes(&ownership),
        name: DEFAULT_NAME.into(),
        ownership,
        version,
    };
    if let Some(v) = &plan.version {
        plan.notes
            .push(format!("Wazuh {} (read from {})", v.text, v.source));
    }
    plan.note_unreachable_ancestors();
    let seed_ids = plan.plan_local_rules()?;
    plan.plan_ossec_conf(conf, &conf_path, req, &seed_ids)?;
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

/// An agent home: the active-response program and its directories, nothing else.
fn plan_agent(req: &Request) -> Result<Plan, InstallError> {
    if req.api_key_file.is_some() {
        return Err(InstallError::KeyOnAgent);
    }
    let home = &req.wazuh_dir;
    let conf_path = home.join("etc/ossec.conf");
    let has_client = fs::read_to_string(&conf_path)
        .ok()
        .and_then(|text| OssecConf::parse(&text).ok())
        .is_some_and(|conf| conf.has_client());
    if !has_client && !home.join("bin/wazuh-agentd").is_file() {
        return Err(InstallError::NotAgent(home.display().to_string()));
    }
    let ownership = resolve_ownership(&conf_path);
    let mut plan = Plan {
        home: home.clone(),
        steps: Vec::new(),
        notes: ownership_notes(&ownership),
        name: COMMAND_NAME.into(),
        ownership,
        version: detect_version(home),
    };
    if let Some(v) = &plan.version {
        plan.notes
            .push(format!("Wazuh {} (read from {})", v.text, v.source));
    }
    let binary = fs::read(&req.binary).map_err(io_err(&req.binary))?;
    plan.plan_dir("active-response", 0o750)?;
    plan.plan_dir(ACTIVE_RESPONSE_BIN_DIR, 0o750)?;
    plan.plan_program(ACTIVE_RESPONSE_BIN_DIR, COMMAND_NAME, &binary)?;
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
        seed_ids: &SeedIds,
    ) -> Result<(), InstallError> {
        let old = conf.text();
        let mut conf = conf;
        if let Some(block) = self.integration_edit(&conf, req) {
            conf = reparse(&conf.with_integration(block), path)?;
        }
        if let Some(edited) = self.retarget_integration(&conf, seed_ids) {
            conf = reparse(&edited, path)?;
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
            contents: conf.text().into_bytes(),
            old: Some(old.into_bytes()),
            mode: None,
            owner: Owner::Keep,
            kind: FileKind::Config,
        });
        Ok(())
    }

    /// The blog's `<integration>` ran on its rule 100001: point it at the trigger of the
    /// shipped rules (unless 100001 is a rule of the administrator's own), and on 4.7 drop
    /// the `<timeout>`/`<retries>` its integratord refuses.
    fn retarget_integration(&mut self, conf: &OssecConf, seed_ids: &SeedIds) -> Option<String> {
        let block = conf.integration_elements().into_iter().find(|el| {
            el.child("name")
                .is_some_and(|n| n.text.starts_with(DEFAULT_NAME))
        })?;
        let name = block
            .child("name")
            .map(|n| n.text.clone())
            .unwrap_or_default();
        let mut edits = Vec::new();
        if let Some(rule_id) = block.child("rule_id") {
            let ids: Vec<&str> = rule_id.text.split(',').map(str::trim).collect();
            if ids.contains(&"100001") {
                if seed_ids.foreign_100001.is_empty() {
                    let new: Vec<String> = ids
                        .iter()
                        .map(|id| match *id {
                            "100001" => TRIGGER_RULE.to_string(),
                            other => other.to_string(),
                        })
                        .collect();
                    edits.push((
                        rule_id.start..rule_id.end,
                        format!("<rule_id>{}</rule_id>", new.join(",")),
                    ));
                    self.notes.push(format!(
                        "the <integration> block for {name} ran on rule 100001 (the blog's trigger); it now runs on {TRIGGER_RULE}, the trigger in {}",
                        RULE_FILES[0].name
                    ));
                } else {
                    self.notes.push(format!(
                        "the <integration> block for {name} runs on rule 100001, which {} defines (not the blog's rule): left as it is; the trigger of repute's rules is {TRIGGER_RULE}",
                        seed_ids.foreign_100001.join(", ")
                    ));
                }
            }
        }
        if self
            .version
            .as_ref()
            .is_some_and(|v| !v.has_integration_timeout())
        {
            for child in ["timeout", "retries"] {
                if let Some(el) = block.child(child) {
                    edits.push((conf.removal_range(el), String::new()));
                    self.notes.push(format!(
                        "removed <{child}> from the <integration> block for {name}: Wazuh 4.7's integratord does not start with it"
                    ));
                }
            }
        }
        if edits.is_empty() {
            return None;
        }
        edits.sort_by_key(|(r, _)| r.start);
        Some(conf.splice(&edits))
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
        Ok(())
    }

    /// The blog's rules 100001 and 100002, wherever in `etc/rules/` they are (the blog puts
    /// them in `local_rules.xml`), are taken out: the shipped rules carry their meaning under
    /// ids of their own (110100, 110112), and two rules with one id do not load as meant.
    /// The stock example rule 100001 and rules of the administrator's own are left alone.
    /// Every file edited is backed up first; a note says what was done.
    fn plan_local_rules(&mut self) -> Result<SeedIds, InstallError> {
        let mut seed = SeedIds::default();
        let dir = self.home.join("etc/rules");
        let mut files: Vec<PathBuf> = match fs::read_dir(&dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "xml"))
                .filter(|p| {
                    !RULE_FILES
                        .iter()
                        .any(|f| p.file_name() == Some(f.name.as_ref()))
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        files.sort();
        for path in files {
            let rel = self.rel(&path);
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            let Some(found) = seed_rules(&text) else {
                continue;
            };
            let mut said = Vec::new();
            let mut stock = false;
            for rule in &found.rules {
                match rule.kind {
                    SeedKind::Blog => said.push(rule.id),
                    SeedKind::StockExample => stock = true,
                    SeedKind::Other => {
                        if rule.id == 100_001 {
                            seed.foreign_100001.push(rel.clone());
                        }
                        self.notes.push(format!(
                            "{rel}: rule {} is not the blog's rule: left as it is (repute's rules use {}-{})",
                            rule.id, TRIGGER_RULE, LAST_RULE
                        ));
                    }
                }
            }
            if stock {
                self.notes.push(format!(
                    "{rel}: the stock example rule 100001 is left as it is (repute's rules use {TRIGGER_RULE}-{LAST_RULE}, no collision)"
                ));
            }
            if said.is_empty() {
                continue;
            }
            let ids: Vec<String> = said.iter().map(u32::to_string).collect();
            self.notes.push(format!(
                "{rel}: removed the blog's rule{} {} (backup first); {} in {} replace{} {}",
                if said.len() > 1 { "s" } else { "" },
                ids.join(" and "),
                said.iter()
                    .map(|id| if *id == 100_001 {
                        TRIGGER_RULE.to_string()
                    } else {
                        "110112".to_string()
                    })
                    .collect::<Vec<_>>()
                    .join(" and "),
                RULE_FILES[0].name,
                if said.len() > 1 { "" } else { "s" },
                if said.len() > 1 { "them" } else { "it" },
            ));
            self.steps.push(Step::File {
                path: path.clone(),
                contents: found.without_blog.into_bytes(),
                old: Some(text.into_bytes()),
                mode: None,
                owner: Owner::Keep,
                kind: FileKind::Config,
            });
        }
        Ok(seed)
    }

    /// Names every directory from `/` down to the home that user `wazuh` (integratord
    /// runs the integration as that user) cannot enter.
    fn note_unreachable_ancestors(&mut self) {
        if self.ownership.group != "wazuh" {
            return;
        }
        let Ok(home) = fs::canonicalize(&self.home) else {
            return;
        };
        for dir in home.ancestors() {
            let Ok(m) = fs::metadata(dir) else { continue };
            let mode = m.mode();
            let enter = mode & 0o001 != 0 || (m.gid() == self.ownership.gid && mode & 0o010 != 0);
            if !enter {
                self.notes.push(format!(
                    "{} (mode {:04o}) cannot be entered by user wazuh, as which integratord runs the integration: it will fail until the directory is reachable (chmod o+x {})",
                    dir.display(),
                    mode & 0o7777,
                    dir.display()
                ));
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
    ///
    /// Staged, then committed: every directory is made and every file written beside its
    /// target first (with its mode and owner, backups taken), and only then is each renamed
    /// into place, `etc/ossec.conf` last, so the `<integration>` block never names a program
    /// or a rule that is not there. When any step fails, everything done is undone (files
    /// put back from the copies kept for that, new files and directories removed) and the
    /// tree is left as it was.
    pub fn apply(&self) -> Result<Vec<String>, InstallError> {
        let mut tx = Transaction::default();
        let result = self.stage(&mut tx).and_then(|lines| {
            tx.commit()?;
            Ok(lines)
        });
        match result {
            Ok(lines) => {
                tx.forget();
                Ok(lines)
            }
            Err(e) => {
                tx.roll_back();
                Err(e)
            }
        }
    }

    fn stage(&self, tx: &mut Transaction) -> Result<Vec<String>, InstallError> {
        let mut done = Vec::new();
        for step in &self.steps {
            if let Step::Dir { path, mode } = step {
                tx.make_dirs(path)?;
                tx.keep_attributes(path);
                self.set_attributes(path, Some(*mode), Owner::RootGroup)?;
                done.push(format!("directory {} (mode {mode:04o})", self.rel(path)));
            }
        }
        // ossec.conf (the only step with Owner::Keep on a Config that names the others)
        // goes last; the order of the rest is the plan's.
        let mut files: Vec<&Step> = self
            .steps
            .iter()
            .filter(|s| matches!(s, Step::File { .. }))
            .collect();
        files.sort_by_key(|s| match s {
            Step::File { path, .. } => path.ends_with("etc/ossec.conf"),
            Step::Dir { .. } => false,
        });
        for step in files {
            let Step::File {
                path,
                contents,
                old,
                mode,
                owner,
                kind,
            } = step
            else {
                continue;
            };
            done.push(self.stage_file(tx, path, contents, old.is_some(), *mode, *owner, *kind)?);
        }
        Ok(done)
    }

    #[allow(clippy::too_many_arguments)]
    fn stage_file(
        &self,
        tx: &mut Transaction,
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
        let target = match symlink_target(path)? {
            Some(target) => {
                line.push_str(&format!(" (a symlink: edited {})", target.display()));
                target
            }
            None => path.to_path_buf(),
        };
        // Config files, and a script being replaced by this program (the blog's .py).
        let replaces_script =
            kind == FileKind::Binary && fs::read(&target).is_ok_and(|old| old.starts_with(b"#!"));
        if (kind == FileKind::Config && existed) || replaces_script {
            let backup = backup(path, &target)?;
            tx.created.push(backup.clone());
            line.push_str(&format!(" (backup: {})", self.rel(&backup)));
        }
        let (keep_mode, keep_owner) = match fs::metadata(&target) {
            Ok(m) => (Some(m.mode() & 0o7777), Some((m.uid(), m.gid()))),
            Err(_) => (None, None),
        };
        // Written beside, renamed at commit: integratord may be running the old program
        // right now, and a reader must never see half a file.
        let tmp = unique_beside(&target, "repute-tmp")?;
        tx.staged.push((tmp.clone(), target.clone()));
        fs::write(&tmp, contents).map_err(io_err(&tmp))?;
        self.set_attributes(&tmp, mode.or(keep_mode), owner)?;
        if let (Owner::Keep, Some((uid, gid))) = (owner, keep_owner)
            && self.ownership.chown
        {
            chown(&tmp, uid, gid)?;
        }
        Ok(line)
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

/// What defines rule 100001 or 100002 in a rules file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeedKind {
    /// The blog's rule: 100001 on 5716 "from a public IP address", or 100002 on the
    /// enrichment score.
    Blog,
    /// The example every manager ships in `local_rules.xml` (srcip 1.1.1.1).
    StockExample,
    /// Someone's own rule.
    Other,
}

#[derive(Debug, Clone)]
struct SeedRule {
    id: u32,
    kind: SeedKind,
}

/// The rules 100001/100002 of a rules file, and the file without the blog's ones.
#[derive(Debug, Clone)]
struct SeedRules {
    rules: Vec<SeedRule>,
    without_blog: String,
}

/// `None` when the file defines neither id (or does not parse: analysisd will say why).
fn seed_rules(text: &str) -> Option<SeedRules> {
    let bom = if text.starts_with('\u{feff}') {
        "\u{feff}"
    } else {
        ""
    };
    let body = &text[bom.len()..];
    let roots = xml::parse(body).ok()?;
    let mut rules = Vec::new();
    let mut cuts: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    for group in roots.iter().filter(|r| r.name == "group") {
        let in_group: Vec<&xml::Element> =
            group.children.iter().filter(|c| c.name == "rule").collect();
        let mut blog_here = Vec::new();
        for rule in &in_group {
            let Some(id) = rule.attr("id").and_then(|i| i.parse::<u32>().ok()) else {
                continue;
            };
            if id != 100_001 && id != 100_002 {
                continue;
            }
            let kind = seed_kind(id, rule);
            if kind == SeedKind::Blog {
                blog_here.push((id, *rule));
            }
            rules.push(SeedRule { id, kind });
        }
        if blog_here.is_empty() {
            continue;
        }
        let note = |ids: &[u32]| {
            let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
            format!(
                "<!-- repute wazuh install removed the blog's rule {} here: {} carries its meaning -->",
                ids.join(" and "),
                RULE_FILES[0].name
            )
        };
        if blog_here.len() == in_group.len() {
            let ids: Vec<u32> = blog_here.iter().map(|(id, _)| *id).collect();
            cuts.push((group.start..group.end, note(&ids)));
        } else {
            for (id, rule) in blog_here {
                cuts.push((rule.start..rule.end, note(&[id])));
            }
        }
    }
    if rules.is_empty() {
        return None;
    }
    cuts.sort_by_key(|(r, _)| r.start);
    let mut out = String::from(bom);
    let mut from = 0;
    for (range, with) in &cuts {
        out.push_str(&body[from..range.start]);
        out.push_str(with);
        from = range.end;
    }
    out.push_str(&body[from..]);
    Some(SeedRules {
        rules,
        without_blog: out,
    })
}

fn seed_kind(id: u32, rule: &xml::Element) -> SeedKind {
    let text = |name: &str| rule.child(name).map(|c| c.text.as_str()).unwrap_or("");
    let fields: Vec<&str> = rule
        .children
        .iter()
        .filter(|c| c.name == "field")
        .filter_map(|c| c.attr("name"))
        .collect();
    match id {
        100_001 if text("srcip") == "1.1.1.1" => SeedKind::StockExample,
        100_001
            if text("if_sid") == "5716"
                && (text("description").contains("from a public IP address")
                    || text("match").contains("192\\.168")) =>
        {
            SeedKind::Blog
        }
        100_002 if fields.contains(&"abuseipdb.abuse_confidence_score") => SeedKind::Blog,
        _ => SeedKind::Other,
    }
}

/// The version of the Wazuh home: the sandbox's record (`.wazuh-sandbox`, `version=`), the
/// `VERSION="vX.Y.Z"` line of `bin/wazuh-control` (a shell script on every 4.x install), or
/// that of `etc/ossec-init.conf` (before 4.2). Nothing is executed.
pub fn detect_version(home: &Path) -> Option<WazuhVersion> {
    for (rel, key) in [
        (".wazuh-sandbox", "version="),
        ("bin/wazuh-control", "VERSION="),
        ("etc/ossec-init.conf", "VERSION="),
    ] {
        let Ok(file) = fs::File::open(home.join(rel)) else {
            continue;
        };
        let mut head = Vec::new();
        // The line sits near the top; a bounded read of a file that is not ours.
        if io::Read::read_to_end(&mut io::Read::take(file, 64 * 1024), &mut head).is_err() {
            continue;
        }
        let head = String::from_utf8_lossy(&head);
        for line in head.lines() {
            let Some(value) = line.trim().strip_prefix(key) else {
                continue;
            };
            let value = value.trim_matches(|c| c == '"' || c == '\'' || c == 'v');
            let mut parts = value.split('.').map(|p| p.parse::<u32>());
            if let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) {
                return Some(WazuhVersion {
                    major,
                    minor,
                    text: value.to_string(),
                    source: rel.to_string(),
                });
            }
        }
    }
    None
}

/// What `path` points to when it is a symlink: a symlinked file (configuration management)
/// is edited where it points, and the link stays.
fn symlink_target(path: &Path) -> Result<Option<PathBuf>, InstallError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            Ok(Some(fs::canonicalize(path).map_err(io_err(path))?))
        }
        _ => Ok(None),
    }
}

/// A configuration file replaced by [`replace_config`].
#[derive(Debug, Clone)]
pub(crate) struct Replaced {
    /// The copy of the file as it was, beside `path`.
    pub backup: PathBuf,
    /// What was edited when `path` is a symlink.
    pub symlink_target: Option<PathBuf>,
}

/// Replaces the configuration file `path` (`ossec.conf`) with `contents` the way install
/// edits it: a backup first (never over another one), then the new text written beside the
/// file `path` is or points to and renamed over it with that file's mode and owner, so a
/// reader never sees half a file and a symlink stays a symlink. Uninstall's one edit.
pub(crate) fn replace_config(path: &Path, contents: &[u8]) -> Result<Replaced, InstallError> {
    let symlink = symlink_target(path)?;
    let target = symlink.clone().unwrap_or_else(|| path.to_path_buf());
    let backup = backup(path, &target)?;
    let meta = fs::metadata(&target).map_err(io_err(&target))?;
    let tmp = unique_beside(&target, "repute-tmp")?;
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(meta.mode() & 0o7777)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        io::Write::write_all(&mut file, contents).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        // Not root: the file stays ours, as install leaves it.
        let _ = chown(&tmp, meta.uid(), meta.gid());
        fs::set_permissions(&tmp, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io_err(&tmp))?;
        fs::rename(&tmp, &target).map_err(io_err(&target))
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(Replaced {
        backup,
        symlink_target: symlink,
    })
}

/// Copies `target` (what `path` is, or points to) to `path.repute-backup-<UTC time>`, with
/// its mode and owner. A backup never replaces another: a name already taken (two installs
/// in one second) gets `.1`, `.2`, ... after it.
pub(crate) fn backup(path: &Path, target: &Path) -> Result<PathBuf, InstallError> {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".repute-backup-{stamp}"));
    let base = path.with_file_name(name);
    let contents = fs::read(target).map_err(io_err(target))?;
    let meta = fs::metadata(target).map_err(io_err(target))?;
    for n in 0..1000u32 {
        let candidate = if n == 0 {
            base.clone()
        } else {
            let mut name = base.file_name().unwrap_or_default().to_os_string();
            name.push(format!(".{n}"));
            base.with_file_name(name)
        };
        let mut file = match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(meta.mode() & 0o777)
            .open(&candidate)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(&candidate)(e)),
        };
        io::Write::write_all(&mut file, &contents).map_err(io_err(&candidate))?;
        let _ = chown(&candidate, meta.uid(), meta.gid());
        return Ok(candidate);
    }
    Err(InstallError::Invalid {
        path: base.display().to_string(),
        detail: "1000 backups of this second already exist".into(),
    })
}

/// A name beside `target` that nothing uses: `.<file>.<what>-<pid>-<n>`.
fn unique_beside(target: &Path, what: &str) -> Result<PathBuf, InstallError> {
    let file = target.file_name().unwrap_or_default().to_string_lossy();
    for n in 0..1000u32 {
        let candidate = target.with_file_name(format!(".{file}.{what}-{}-{n}", std::process::id()));
        if fs::symlink_metadata(&candidate).is_err() {
            return Ok(candidate);
        }
    }
    Err(InstallError::Invalid {
        path: target.display().to_string(),
        detail: format!("no free name for a .{what} file beside it"),
    })
}

/// What [`Plan::apply`] has done so far, to finish or to undo.
#[derive(Debug, Default)]
struct Transaction {
    /// Directories made, parents first.
    made_dirs: Vec<PathBuf>,
    /// Existing directories whose mode and owner install changes: (path, mode, uid, gid).
    dir_attributes: Vec<(PathBuf, u32, u32, u32)>,
    /// Files made beside their targets (backups): removed on failure.
    created: Vec<PathBuf>,
    /// (written beside, target), in commit order.
    staged: Vec<(PathBuf, PathBuf)>,
    /// Committed: (target, where its old version was kept, if it had one).
    committed: Vec<(PathBuf, Option<PathBuf>)>,
}

impl Transaction {
    fn make_dirs(&mut self, path: &Path) -> Result<(), InstallError> {
        let missing: Vec<&Path> = path.ancestors().take_while(|p| !p.exists()).collect();
        for dir in missing.into_iter().rev() {
            fs::create_dir(dir).map_err(io_err(dir))?;
            self.made_dirs.push(dir.to_path_buf());
        }
        Ok(())
    }

    fn keep_attributes(&mut self, path: &Path) {
        if self.made_dirs.iter().any(|d| d == path) {
            return;
        }
        if let Ok(m) = fs::metadata(path) {
            self.dir_attributes
                .push((path.to_path_buf(), m.mode() & 0o7777, m.uid(), m.gid()));
        }
    }

    /// Renames every staged file into place; the old version of each is kept (a hard link)
    /// until the whole set is in.
    fn commit(&mut self) -> Result<(), InstallError> {
        while let Some((tmp, target)) = self.staged.first().cloned() {
            let kept = if fs::symlink_metadata(&target).is_ok_and(|m| m.is_file()) {
                let kept = unique_beside(&target, "repute-old")?;
                fs::hard_link(&target, &kept).map_err(io_err(&target))?;
                Some(kept)
            } else {
                None
            };
            if let Err(e) = fs::rename(&tmp, &target) {
                if let Some(kept) = kept {
                    let _ = fs::remove_file(kept);
                }
                return Err(io_err(&target)(e));
            }
            self.staged.remove(0);
            self.committed.push((target, kept));
        }
        Ok(())
    }

    /// Success: drops the old versions kept for a roll-back.
    fn forget(&mut self) {
        for (_, kept) in self.committed.drain(..) {
            if let Some(kept) = kept {
                let _ = fs::remove_file(kept);
            }
        }
    }

    /// Failure: puts everything back as it was, best effort, newest first.
    fn roll_back(&mut self) {
        for (tmp, _) in self.staged.drain(..) {
            let _ = fs::remove_file(tmp);
        }
        for (target, kept) in self.committed.drain(..).rev() {
            let _ = match kept {
                Some(kept) => fs::rename(kept, &target),
                None => fs::remove_file(&target),
            };
        }
        for path in self.created.drain(..) {
            let _ = fs::remove_file(path);
        }
        for (path, mode, uid, gid) in self.dir_attributes.drain(..) {
            let _ = std::os::unix::fs::chown(&path, Some(uid), Some(gid));
            let _ = fs::set_permissions(&path, fs::Permissions::from_mode(mode));
        }
        for dir in self.made_dirs.drain(..).rev() {
            let _ = fs::remove_dir(dir);
        }
    }
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
