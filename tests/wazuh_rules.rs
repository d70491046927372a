//! `repute wazuh rules`: the shipped ruleset as a user reads it, and the checks Wazuh's rule
//! loader would otherwise fail on (or silently mishandle).

use std::process::Command;

use quick_xml::events::Event;

fn rules_output(extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_repute"))
        .args(["wazuh", "rules"])
        .args(extra)
        .output()
        .expect("run repute wazuh rules");
    assert!(out.status.success());
    assert!(out.stderr.is_empty());
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn the_printed_rules_parse_and_follow_wazuhs_rules() {
    let text = rules_output(&[]);
    // quick-xml reads it to the end (several roots, as a Wazuh rules file has).
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut groups = Vec::new();
    let mut srcips = Vec::new();
    let mut fields = Vec::new();
    let mut current = String::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Eof => break,
            Event::Start(tag) => {
                current = String::from_utf8_lossy(tag.name().into_inner().as_bytes()).into_owned();
                for attr in tag.attributes().flatten() {
                    let key = attr.key.into_inner();
                    if current == "group" && key == "name" {
                        groups.push(attr.value.to_string());
                    }
                    if current == "field" && key == "name" {
                        fields.push(attr.value.to_string());
                    }
                }
            }
            Event::Text(t) if current == "group" && !t.xml10_content().trim().is_empty() => {
                groups.push(t.xml10_content().trim().to_string());
            }
            Event::Text(t) if current == "srcip" => srcips.push(t.xml10_content().to_string()),
            Event::End(_) => current.clear(),
            _ => {}
        }
    }
    assert!(!groups.is_empty() && !srcips.is_empty() && !fields.is_empty());
    for g in &groups {
        assert!(g.ends_with(','), "group {g:?} must end with a comma");
    }
    for ip in &srcips {
        assert!(
            !ip.trim_start().starts_with('!'),
            "<srcip>{ip}</srcip> negates with '!'"
        );
    }
    for f in &fields {
        assert!(
            !repute::wazuh::ruleset::STATIC_FIELDS.contains(&f.as_str()),
            "<field name={f:?}> is a static field"
        );
    }
    // The blog's meaning under ids of their own: a stock manager's example rule is 100001.
    assert!(text.contains(r#"<rule id="110100""#) && text.contains(r#"<rule id="110112""#));
    assert!(!text.contains(r#"<rule id="100001""#) && !text.contains(r#"<rule id="100002""#));
    // Well-formed for a strict XML 1.0 parser too (no "--" inside a comment).
    roxmltree::Document::parse(&format!("<rules>{text}</rules>")).expect("strict XML");
    assert!(text.contains("<if_sid>5710, 5716, 5758, 5760</if_sid>"));
    repute::wazuh::ruleset::lint(&text).expect("lint clean");
}

#[test]
fn the_integration_block_can_be_printed() {
    let text = rules_output(&["--integration-block"]);
    assert!(text.contains("<name>custom-abuseipdb</name>"));
    assert!(text.contains("<rule_id>110100</rule_id>"));
    let roots = repute::wazuh::xml::parse(&text).expect("parses");
    let elements: Vec<&str> = roots
        .iter()
        .flat_map(|r| r.walk())
        .map(|e| e.name.as_str())
        .collect();
    assert!(elements.contains(&"integration"));
    assert!(
        !elements.contains(&"api_key"),
        "the key stays out of ossec.conf"
    );
}
