//! The shipped Wazuh ruleset and configuration snippet, embedded from `ruleset/*.xml`.
//!
//! The XML files under `src/wazuh/ruleset/` are the single source: `repute wazuh rules` prints
//! them, `repute wazuh install` writes them, and [`lint`] checks the mistakes Wazuh does not
//! forgive or silently mishandles (`docs/wazuh.md` §2.3, §3): a `<group name>` without its
//! trailing comma (groups glue together), `<srcip>` negated with `!` (a positive match since
//! 4.4), a `<field>` naming a static field (the whole file fails to load), ids outside the
//! custom range.

use std::net::IpAddr;

use ipnet::IpNet;

use super::xml::{self, Element};

/// A rules file as shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleFile {
    /// The file name under `etc/rules/`.
    pub name: &'static str,
    pub text: &'static str,
}

/// Every rules file repute ships.
pub const RULE_FILES: &[RuleFile] = &[RuleFile {
    name: "repute_abuseipdb_rules.xml",
    text: include_str!("ruleset/repute_abuseipdb_rules.xml"),
}];

/// The `<integration>` block `repute wazuh install` adds to `ossec.conf` (indented for a
/// child of `<ossec_config>`).
pub const INTEGRATION_BLOCK: &str = include_str!("ruleset/integration_block.xml");

/// The custom rule id range Wazuh leaves to users.
pub const CUSTOM_IDS: std::ops::RangeInclusive<u32> = 100_000..=120_000;

/// Names analysisd refuses inside `<field name=…>` (`rules.c::w_check_attr_field_name`).
pub const STATIC_FIELDS: &[&str] = &[
    "srcip",
    "dstip",
    "srcgeoip",
    "dstgeoip",
    "srcport",
    "dstport",
    "user",
    "srcuser",
    "dstuser",
    "url",
    "id",
    "data",
    "extra_data",
    "status",
    "protocol",
    "system_name",
    "action",
];

/// What a rules file defines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pub rule_ids: Vec<u32>,
    /// Every `<srcip negate="yes">` network, in file order.
    pub negated_srcip: Vec<IpNet>,
}

/// Checks a rules file; the error lists every problem found.
pub fn lint(text: &str) -> Result<Summary, Vec<String>> {
    let roots = xml::parse(text).map_err(|e| vec![e])?;
    let mut problems = Vec::new();
    let mut summary = Summary::default();
    for group in &roots {
        if group.name != "group" {
            problems.push(format!("top-level <{}> is not a <group>", group.name));
            continue;
        }
        check_group_names(group, &mut problems);
        for rule in group.children.iter().filter(|c| c.name == "rule") {
            check_rule(rule, &mut summary, &mut problems);
        }
    }
    if problems.is_empty() {
        Ok(summary)
    } else {
        Err(problems)
    }
}

fn check_group_names(group: &Element, problems: &mut Vec<String>) {
    let name = group.attr("name").unwrap_or("");
    if !name.ends_with(',') {
        problems.push(format!("<group name=\"{name}\"> does not end with a comma"));
    }
    for el in group
        .walk()
        .into_iter()
        .filter(|e| e.name == "group" && !e.text.is_empty())
    {
        if !el.text.ends_with(',') {
            problems.push(format!(
                "<group>{}</group> does not end with a comma",
                el.text
            ));
        }
    }
}

fn check_rule(rule: &Element, summary: &mut Summary, problems: &mut Vec<String>) {
    let id_text = rule.attr("id").unwrap_or("");
    match id_text.parse::<u32>() {
        Ok(id) if CUSTOM_IDS.contains(&id) => summary.rule_ids.push(id),
        _ => problems.push(format!("rule id {id_text:?} is not in the custom range")),
    }
    for child in &rule.children {
        match child.name.as_str() {
            "srcip" | "dstip" => check_ip_element(id_text, child, summary, problems),
            "field" => {
                let name = child.attr("name").unwrap_or("");
                if STATIC_FIELDS.contains(&name) {
                    problems.push(format!(
                        "rule {id_text}: <field name=\"{name}\"> is a static field"
                    ));
                }
                if !child.text.starts_with('^') {
                    problems.push(format!(
                        "rule {id_text}: <field name=\"{name}\"> is not anchored"
                    ));
                }
            }
            _ => {}
        }
    }
}

fn check_ip_element(id: &str, el: &Element, summary: &mut Summary, problems: &mut Vec<String>) {
    if el.text.starts_with('!') {
        problems.push(format!(
            "rule {id}: <{}>{}</{}> negates with '!' (broken since Wazuh 4.4)",
            el.name, el.text, el.name
        ));
        return;
    }
    let net = el
        .text
        .parse::<IpNet>()
        .or_else(|_| el.text.parse::<IpAddr>().map(IpNet::from));
    match net {
        Ok(net) if el.attr("negate") == Some("yes") && el.name == "srcip" => {
            summary.negated_srcip.push(net)
        }
        Ok(_) => {}
        Err(_) => problems.push(format!(
            "rule {id}: <{}>{}</{}> is not an address or network",
            el.name, el.text, el.name
        )),
    }
}

/// All shipped rule files, as `repute wazuh rules` prints them.
pub fn printable() -> String {
    RULE_FILES
        .iter()
        .map(|f| format!("<!-- etc/rules/{} -->\n{}", f.name, f.text))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Summary {
        lint(RULE_FILES[0].text).unwrap_or_else(|p| panic!("{}", p.join("\n")))
    }

    #[test]
    fn shipped_rules_pass_the_lint_and_keep_the_seed_ids() {
        let s = shipped();
        assert!(s.rule_ids.contains(&100001));
        assert!(s.rule_ids.contains(&100002));
        let mut ids = s.rule_ids.clone();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), s.rule_ids.len(), "duplicate rule ids");
    }

    #[test]
    fn the_trigger_fires_on_the_four_failure_rules_above_level_5() {
        let roots = xml::parse(RULE_FILES[0].text).unwrap();
        let rule = roots
            .iter()
            .flat_map(|g| g.children.iter())
            .find(|r| r.attr("id") == Some("100001"))
            .unwrap();
        let parents: Vec<&str> = rule
            .child("if_sid")
            .unwrap()
            .text
            .split(',')
            .map(str::trim)
            .collect();
        assert_eq!(parents, ["5710", "5716", "5758", "5760"]);
        assert!(rule.attr("level").unwrap().parse::<u8>().unwrap() > 5);
        assert!(rule.child("match").is_none() && rule.child("regex").is_none());
    }

    #[test]
    fn negated_ranges_cover_private_and_special_addresses_of_both_families() {
        let nets = shipped().negated_srcip;
        let covered = |ip: &str| {
            let ip: IpAddr = ip.parse().unwrap();
            nets.iter().any(|n| n.contains(&ip))
        };
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.1.2.3",
            "192.0.2.7",
            "198.51.100.7",
            "203.0.113.7",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.0.8",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "2001:db8::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "::ffff:192.168.0.1",
            "100::1",
            "3fff::1",
        ] {
            assert!(covered(ip), "{ip} should be negated");
        }
        for ip in [
            "49.88.112.73",
            "8.8.8.8",
            "104.16.1.1",
            "103.1.1.1",
            "2606:4700::1111",
            "172.32.0.1",
            "100.128.0.1",
        ] {
            assert!(!covered(ip), "{ip} is public");
        }
    }

    /// Public addresses inside a negated block, accepted because no SSH client comes from
    /// them (anycast service addresses, identifier blocks): the trigger skips them, and the
    /// integration would look them up if asked.
    const PUBLIC_INSIDE_NEGATED: &[&str] = &[
        "192.0.0.9/32",
        "192.0.0.10/32",
        "2001:1::1/128",
        "2001:1::2/128",
        "2001:1::3/128",
        "2001:3::/32",
        "2001:4:112::/48",
        "2001:20::/28",
        "2001:30::/28",
    ];

    #[test]
    fn every_non_public_range_of_the_address_table_is_negated() {
        let nets = shipped().negated_srcip;
        let covered = |net: &IpNet| nets.iter().any(|n| n.contains(net));
        let v4 = crate::addr::IPV4_TABLE
            .iter()
            .map(|(n, c)| (IpNet::V4(*n), *c));
        let v6 = crate::addr::IPV6_TABLE
            .iter()
            .map(|(n, c)| (IpNet::V6(*n), *c));
        for (net, class) in v4.chain(v6) {
            if class.is_public() {
                let exception = PUBLIC_INSIDE_NEGATED.contains(&net.to_string().as_str());
                assert!(exception || !covered(&net), "public {net} is negated");
            } else {
                assert!(covered(&net), "{net} ({class}) is not negated");
            }
        }
        // Everything outside global unicast is reserved for addr.rs, and for the rule.
        for ip in ["::2", "4000::1", "fec0::1", "ff02::1", "64:ff9b::a00:1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!crate::addr::classify(ip).is_public(), "{ip}");
            assert!(nets.iter().any(|n| n.contains(&ip)), "{ip} not negated");
        }
    }

    #[test]
    fn every_negated_block_starts_with_a_non_public_address() {
        for net in shipped().negated_srcip {
            let class = crate::addr::classify(net.network());
            assert!(!class.is_public(), "{net} starts with a public address");
        }
    }

    #[test]
    fn the_lint_catches_each_mistake() {
        let bad = r#"<group name="local,syslog">
  <rule id="5000" level="3">
    <srcip>!10.0.0.0/8</srcip>
    <field name="srcip">^1$</field>
    <field name="abuseipdb.found">1</field>
    <group>x</group>
  </rule>
</group>"#;
        let problems = lint(bad).unwrap_err().join("\n");
        for needle in [
            "does not end with a comma",
            "<group>x</group>",
            "custom range",
            "'!'",
            "static field",
            "not anchored",
        ] {
            assert!(
                problems.contains(needle),
                "missing {needle:?} in:\n{problems}"
            );
        }
        assert!(lint("<group name=\"a,\"><rule id=\"100100\"></group>").is_err());
    }

    #[test]
    fn the_integration_block_parses_and_names_the_trigger() {
        let roots = xml::parse(INTEGRATION_BLOCK).unwrap();
        let block = roots.iter().find(|e| e.name == "integration").unwrap();
        assert_eq!(block.child("name").unwrap().text, "custom-abuseipdb");
        assert_eq!(block.child("rule_id").unwrap().text, "100001");
        assert_eq!(block.child("alert_format").unwrap().text, "json");
        assert!(block.child("api_key").is_none());
        assert!(printable().contains("etc/rules/repute_abuseipdb_rules.xml"));
    }
}
