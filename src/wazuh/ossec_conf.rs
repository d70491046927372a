//! Reading and editing `etc/ossec.conf` without disturbing anything else in it.
//!
//! The file is parsed with quick-xml (through [`super::xml`]) only to *locate* things; the
//! edit is a splice of new text into the original bytes, so comments, blank lines, attribute
//! quoting, line endings and every `<ossec_config>` root (a manager's file often has two) stay
//! byte-identical. A new block (`<integration>`, `<command>`, `<active-response>`) goes after
//! the last existing sibling of the same name, or else at the end of the first
//! `<ossec_config>`, indented like its neighbours.
//!
//! Two shapes are handled on purpose: a UTF-8 byte-order mark (editors on Windows write one;
//! the parser's byte offsets start after it, so it is set aside and put back), and a
//! self-closing `<ossec_config/>` (it has no inside: the next root that has one is used, or
//! the element is opened up).

use super::xml::{self, Element};

/// An `<integration>` block already in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingIntegration {
    pub name: String,
    pub has_api_key: bool,
    pub has_options: bool,
}

/// An `<active-response>` block already in the file (the default manager configuration has
/// one without a `<command>`, for the agent upgrade's CA store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingActiveResponse {
    pub command: Option<String>,
    pub rules_id: Option<String>,
    pub rules_group: Option<String>,
    pub timeout: Option<String>,
}

/// The UTF-8 byte-order mark.
const BOM: &str = "\u{feff}";

/// The parsed file.
#[derive(Debug, Clone)]
pub struct OssecConf {
    /// The byte-order mark the file starts with, or "".
    bom: &'static str,
    /// The text after the byte-order mark: every offset in `roots` is into this.
    text: String,
    roots: Vec<Element>,
}

impl OssecConf {
    pub fn parse(text: &str) -> Result<OssecConf, String> {
        let (bom, body) = match text.strip_prefix(BOM) {
            Some(body) => (BOM, body),
            None => ("", text),
        };
        let roots = xml::parse(body)?;
        if !roots.iter().any(|r| r.name == "ossec_config") {
            return Err("no <ossec_config> element".into());
        }
        Ok(OssecConf {
            bom,
            text: body.to_string(),
            roots,
        })
    }

    /// The text as parsed (with its byte-order mark, if it had one).
    pub fn text(&self) -> String {
        format!("{}{}", self.bom, self.text)
    }

    /// The direct children of every `<ossec_config>` root named `name`, in file order.
    fn sections(&self, name: &'static str) -> impl Iterator<Item = &Element> {
        self.roots
            .iter()
            .filter(|r| r.name == "ossec_config")
            .flat_map(|r| r.children.iter())
            .filter(move |c| c.name == name)
    }

    pub fn integrations(&self) -> Vec<ExistingIntegration> {
        self.sections("integration")
            .map(|el| ExistingIntegration {
                name: child_text(el, "name").unwrap_or_default(),
                has_api_key: el.child("api_key").is_some_and(|k| !k.text.is_empty()),
                has_options: el.child("options").is_some(),
            })
            .collect()
    }

    /// True when a `<client>` section names a manager: the file of an agent.
    pub fn has_client(&self) -> bool {
        self.sections("client").next().is_some()
    }

    /// The names of the `<command>` blocks.
    pub fn commands(&self) -> Vec<String> {
        self.sections("command")
            .map(|el| child_text(el, "name").unwrap_or_default())
            .collect()
    }

    pub fn active_responses(&self) -> Vec<ExistingActiveResponse> {
        self.sections("active-response")
            .map(|el| ExistingActiveResponse {
                command: child_text(el, "command"),
                rules_id: child_text(el, "rules_id"),
                rules_group: child_text(el, "rules_group"),
                timeout: child_text(el, "timeout"),
            })
            .collect()
    }

    /// The text with an `<integration>` block inserted (see [`OssecConf::with_section`]).
    pub fn with_integration(&self, block: &str) -> String {
        self.with_section("integration", block)
    }

    /// The text with `block`, a `<name>` section written for two-space indentation and `\n`
    /// line ends, inserted after a blank line as Wazuh's own sections are.
    pub fn with_section(&self, name: &'static str, block: &str) -> String {
        let indent = self.indent_unit();
        let newline = self.newline();
        let mut lines = String::new();
        for line in block.lines() {
            lines.push_str(&reindent(line, &indent));
            lines.push_str(newline);
        }
        let at = match self.insertion_point(name) {
            Some(at) => at,
            None => {
                // Only self-closing roots: open the first one up around the block.
                let root = self.first_root();
                let opened = format!("<ossec_config>{newline}{lines}</ossec_config>");
                return self.splice(&[(root.start..root.end, opened)]);
            }
        };
        let mut insert = String::new();
        if !self.follows_blank_line(at) {
            insert.push_str(newline);
        }
        insert.push_str(&lines);
        self.splice(&[(at..at, insert)])
    }

    /// The text with each range (into the text after the byte-order mark; sorted, not
    /// overlapping) replaced, the byte-order mark kept.
    pub fn splice(&self, edits: &[(std::ops::Range<usize>, String)]) -> String {
        let mut out = String::with_capacity(self.text.len() + 256);
        out.push_str(self.bom);
        let mut from = 0;
        for (range, with) in edits {
            out.push_str(&self.text[from..range.start]);
            out.push_str(with);
            from = range.end;
        }
        out.push_str(&self.text[from..]);
        out
    }

    /// The range of `el`'s whole lines when nothing else shares them, else of `el` alone:
    /// what to cut to remove it.
    pub fn removal_range(&self, el: &Element) -> std::ops::Range<usize> {
        let line_start = self.text[..el.start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.line_end(el.end);
        let alone = self.text[line_start..el.start].trim().is_empty()
            && self.text[el.end..line_end].trim().is_empty();
        if alone {
            line_start..line_end
        } else {
            el.start..el.end
        }
    }

    /// The `<integration>` elements, for edits inside them.
    pub fn integration_elements(&self) -> Vec<&Element> {
        self.sections("integration").collect()
    }

    /// The `<name>` sections of every root, for uninstall to pick the ones it cuts.
    pub fn section_elements(&self, name: &'static str) -> Vec<&Element> {
        self.sections(name).collect()
    }

    /// The text after the byte-order mark: what every element's offsets point into.
    pub fn body(&self) -> &str {
        &self.text
    }

    /// `body` (an edit of [`OssecConf::body`]) with this file's byte-order mark put back.
    pub fn with_body(&self, body: &str) -> String {
        format!("{}{body}", self.bom)
    }

    fn newline(&self) -> &'static str {
        if self.text.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        }
    }

    fn first_root(&self) -> &Element {
        self.roots
            .iter()
            .find(|r| r.name == "ossec_config")
            .expect("checked in parse")
    }

    /// Where to insert: after the line of the last `</name>` section, else at the start of
    /// the line closing the first `<ossec_config>` that is not self-closing; `None` when
    /// every root is.
    fn insertion_point(&self, name: &'static str) -> Option<usize> {
        if let Some(last) = self.sections(name).last() {
            return Some(self.after_line_of(last.end));
        }
        let root = self
            .roots
            .iter()
            .find(|r| r.name == "ossec_config" && !is_self_closing(r))?;
        Some(self.line_start(root.close_start))
    }

    /// True when the text before `at` ends with an empty line.
    fn follows_blank_line(&self, at: usize) -> bool {
        let before = self.text[..at].trim_end_matches(['\r', '\n']);
        self.text[before.len()..at].matches('\n').count() >= 2
    }

    /// The start of the line of `pos` when only blanks precede it there, else `pos`.
    fn line_start(&self, pos: usize) -> usize {
        let start = self.text[..pos].rfind('\n').map_or(0, |i| i + 1);
        if self.text[start..pos].trim().is_empty() {
            start
        } else {
            pos
        }
    }

    /// Just past the newline ending the line of `pos` (or the end of the text).
    fn line_end(&self, pos: usize) -> usize {
        self.text[pos..]
            .find('\n')
            .map_or(self.text.len(), |i| pos + i + 1)
    }

    /// The end of the line of `pos` when only blanks follow it there, else `pos`: in
    /// `</command></ossec_config>` the next line is outside the root.
    fn after_line_of(&self, pos: usize) -> usize {
        let end = self.line_end(pos);
        if self.text[pos..end].trim().is_empty() {
            end
        } else {
            pos
        }
    }

    /// The indentation of the first child of the first `<ossec_config>`.
    fn indent_unit(&self) -> String {
        let child = self
            .roots
            .iter()
            .filter(|r| r.name == "ossec_config")
            .flat_map(|r| r.children.first())
            .next();
        let Some(child) = child else {
            return "  ".into();
        };
        let start = self.text[..child.start].rfind('\n').map_or(0, |i| i + 1);
        let indent = &self.text[start..child.start];
        if !indent.is_empty() && indent.trim().is_empty() {
            indent.to_string()
        } else {
            "  ".into()
        }
    }
}

/// `<ossec_config/>`: the parser gives it an empty end tag.
fn is_self_closing(el: &Element) -> bool {
    el.close_start == el.end
}

fn child_text(el: &Element, name: &str) -> Option<String> {
    el.child(name).map(|c| c.text.clone())
}

/// Re-expresses a two-space-indented line with `unit` per level.
fn reindent(line: &str, unit: &str) -> String {
    let spaces = line.len() - line.trim_start_matches(' ').len();
    format!(
        "{}{}{}",
        unit.repeat(spaces / 2),
        " ".repeat(spaces % 2),
        &line[spaces..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `ossec_conf` fuzz target: a section closed on the same line as its root
    /// got the new block after the root, where Wazuh does not read it.
    #[test]
    fn a_root_closed_on_the_line_of_the_last_section_keeps_the_new_block_inside() {
        for text in [
            "<ossec_config>\n  <command><name>x</name></command></ossec_config>\n",
            "<ossec_config>\n  <command>\n    <name>x</name>\n  </command></ossec_config>\n",
            "<ossec_config><command><name>x</name></command></ossec_config>",
        ] {
            let conf = OssecConf::parse(text).unwrap();
            let block = "<command>\n  <name>repute-block</name>\n</command>";
            let edited = conf.with_section("command", block);
            let again = OssecConf::parse(&edited).unwrap();
            assert_eq!(again.commands(), ["x", "repute-block"], "{edited}");
            assert!(edited.trim_end().ends_with("</ossec_config>"), "{edited}");
        }
    }

    const BLOCK: &str = "  <integration>\n    <name>custom-abuseipdb</name>\n  </integration>\n";

    const MANAGER: &str = "<!--\n  Wazuh - Manager - Default configuration\n-->\n\n<ossec_config>\n  <global>\n    <jsonout_output>yes</jsonout_output>\n  </global>\n\n  <!-- keep me -->\n  <integration>\n    <name>slack</name>\n    <hook_url>https://hooks.slack.com/x</hook_url>\n  </integration>\n\n  <alerts>\n    <log_alert_level>3</log_alert_level>\n  </alerts>\n</ossec_config>\n\n<ossec_config>\n  <localfile>\n    <log_format>syslog</log_format>\n    <location>/var/log/auth.log</location>\n  </localfile>\n</ossec_config>\n";

    #[test]
    fn inserts_after_the_last_integration_and_changes_nothing_else() {
        let conf = OssecConf::parse(MANAGER).unwrap();
        let out = conf.with_integration(BLOCK);
        let inserted = "\n  <integration>\n    <name>custom-abuseipdb</name>\n  </integration>\n";
        let at = MANAGER.find("  </integration>\n").unwrap() + "  </integration>\n".len();
        assert!(!MANAGER[..at].ends_with("\n\n"));
        assert_eq!(&out[..at], &MANAGER[..at]);
        assert_eq!(&out[at..at + inserted.len()], inserted);
        assert_eq!(&out[at + inserted.len()..], &MANAGER[at..]);
        let again = OssecConf::parse(&out).unwrap();
        let names: Vec<String> = again.integrations().into_iter().map(|i| i.name).collect();
        assert_eq!(names, ["slack", "custom-abuseipdb"]);
        assert_eq!(xml::parse(&out).unwrap().len(), 2, "both roots kept");
    }

    #[test]
    fn without_integrations_the_block_closes_the_first_root() {
        let text = "<ossec_config>\n    <global>\n        <x>1</x>\n    </global>\n</ossec_config>\n<ossec_config>\n</ossec_config>\n";
        let out = OssecConf::parse(text).unwrap().with_integration(BLOCK);
        assert_eq!(
            out,
            "<ossec_config>\n    <global>\n        <x>1</x>\n    </global>\n\n    <integration>\n        <name>custom-abuseipdb</name>\n    </integration>\n</ossec_config>\n<ossec_config>\n</ossec_config>\n"
        );
    }

    #[test]
    fn crlf_files_stay_crlf_and_tabs_stay_tabs() {
        let text = "<ossec_config>\r\n\t<global>\r\n\t</global>\r\n</ossec_config>\r\n";
        let out = OssecConf::parse(text).unwrap().with_integration(BLOCK);
        assert!(out.contains(
            "\t<integration>\r\n\t\t<name>custom-abuseipdb</name>\r\n\t</integration>\r\n"
        ));
        assert!(!out.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn a_one_line_file_gets_the_block_on_its_own_lines() {
        let out = OssecConf::parse("<ossec_config><global/></ossec_config>")
            .unwrap()
            .with_integration(BLOCK);
        assert!(out.starts_with("<ossec_config><global/>\n  <integration>\n"));
        assert!(out.ends_with("  </integration>\n</ossec_config>"));
        assert_eq!(OssecConf::parse(&out).unwrap().integrations().len(), 1);
    }

    #[test]
    fn existing_blocks_are_reported() {
        let text = "<ossec_config><integration><name>custom-abuseipdb.py</name><api_key>k</api_key></integration></ossec_config>";
        let found = OssecConf::parse(text).unwrap().integrations();
        assert_eq!(
            found,
            [ExistingIntegration {
                name: "custom-abuseipdb.py".into(),
                has_api_key: true,
                has_options: false
            }]
        );
    }

    #[test]
    fn commands_and_active_responses_go_after_their_siblings() {
        let text = "<ossec_config>\n  <command>\n    <name>firewall-drop</name>\n  </command>\n\n  <active-response>\n    <ca_store>etc/wpk_root.pem</ca_store>\n  </active-response>\n  <global/>\n</ossec_config>\n";
        let conf = OssecConf::parse(text).unwrap();
        assert_eq!(conf.commands(), ["firewall-drop"]);
        assert_eq!(conf.active_responses()[0].command, None);
        let out = conf.with_section(
            "command",
            "  <command>\n    <name>repute-block</name>\n  </command>\n",
        );
        let out = OssecConf::parse(&out).unwrap();
        let out = out.with_section(
            "active-response",
            "  <active-response>\n    <command>repute-block</command>\n    <timeout>60</timeout>\n  </active-response>\n",
        );
        assert_eq!(
            out,
            "<ossec_config>\n  <command>\n    <name>firewall-drop</name>\n  </command>\n\n  <command>\n    <name>repute-block</name>\n  </command>\n\n  <active-response>\n    <ca_store>etc/wpk_root.pem</ca_store>\n  </active-response>\n\n  <active-response>\n    <command>repute-block</command>\n    <timeout>60</timeout>\n  </active-response>\n  <global/>\n</ossec_config>\n"
        );
        let again = OssecConf::parse(&out).unwrap();
        assert_eq!(again.commands(), ["firewall-drop", "repute-block"]);
        assert_eq!(
            again.active_responses()[1],
            ExistingActiveResponse {
                command: Some("repute-block".into()),
                rules_id: None,
                rules_group: None,
                timeout: Some("60".into()),
            }
        );
    }

    /// Issue 10 item 7: the parser's offsets start after a byte-order mark; spliced with
    /// them as they were, the block landed 3 bytes early (and the edit was refused).
    #[test]
    fn a_byte_order_mark_is_kept_and_the_block_lands_inside_the_root() {
        let text = format!("\u{feff}{MANAGER}");
        let conf = OssecConf::parse(&text).unwrap();
        assert_eq!(conf.text(), text);
        let out = conf.with_integration(BLOCK);
        assert!(out.starts_with('\u{feff}'));
        assert_eq!(
            out.trim_start_matches('\u{feff}'),
            OssecConf::parse(MANAGER).unwrap().with_integration(BLOCK)
        );
    }

    /// Issue 10 item 7: a self-closing first root has no inside; the next root is used, or
    /// the only one is opened up.
    #[test]
    fn a_self_closing_root_is_skipped_or_opened() {
        let two = "<ossec_config/>\n<ossec_config>\n  <global/>\n</ossec_config>\n";
        let out = OssecConf::parse(two).unwrap().with_integration(BLOCK);
        assert_eq!(
            out,
            "<ossec_config/>\n<ossec_config>\n  <global/>\n\n  <integration>\n    <name>custom-abuseipdb</name>\n  </integration>\n</ossec_config>\n"
        );
        let one = "<!-- c -->\n<ossec_config/>\n";
        let out = OssecConf::parse(one).unwrap().with_integration(BLOCK);
        assert_eq!(
            out,
            "<!-- c -->\n<ossec_config>\n  <integration>\n    <name>custom-abuseipdb</name>\n  </integration>\n</ossec_config>\n"
        );
        assert_eq!(OssecConf::parse(&out).unwrap().integrations().len(), 1);
    }

    #[test]
    fn broken_or_foreign_files_are_refused() {
        assert!(OssecConf::parse("<ossec_config><global></ossec_config>").is_err());
        assert!(OssecConf::parse("<agent_config></agent_config>").is_err());
    }
}
