//! The shipped Wazuh ruleset and configuration snippet, embedded from `ruleset/*.xml`.
//!
//! The XML files under `src/wazuh/ruleset/` are the single source: `repute wazuh rules` prints
//! them, `repute wazuh install` writes them, and [`lint`] checks the mistakes Wazuh does not
//! forgive or silently mishandles (`docs/wazuh.md` §2.3, §3): a `<group name>` without its
//! trailing comma (groups glue together), `<srcip>` negated with `!` (a positive match since
//! 4.4) or written as analysisd refuses it (`::/3`), `<srcip>` elements of one rule that mix
//! negated and plain entries (analysisd keeps one flag per rule), a `<field>` naming a static
//! field (the whole file fails to load), ids outside the custom range or in use by the stock
//! example rule and the blog's rules.

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

/// The rule the integration runs for: an sshd authentication failure from a public address.
pub const TRIGGER_RULE: u32 = 110_100;

/// Rule ids a stock manager or the blog's setup already uses: the example rule every manager
/// ships in `etc/rules/local_rules.xml` (100001) and the blog's 100001/100002.
pub const IDS_IN_USE_ELSEWHERE: &[u32] = &[100_001, 100_002];

/// The `<srcip>` list of one rule: analysisd puts every `<srcip>` of a rule into one list,
/// negated as a whole when the (last) element says `negate="yes"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrcipList {
    pub rule: u32,
    pub negate: bool,
    pub nets: Vec<IpNet>,
}

/// What a rules file defines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pub rule_ids: Vec<u32>,
    /// The `<srcip>` list of every rule that has one, in file order.
    pub srcip: Vec<SrcipList>,
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
    let id = match id_text.parse::<u32>() {
        Ok(id) if CUSTOM_IDS.contains(&id) && !IDS_IN_USE_ELSEWHERE.contains(&id) => {
            summary.rule_ids.push(id);
            id
        }
        Ok(id) if IDS_IN_USE_ELSEWHERE.contains(&id) => {
            problems.push(format!(
                "rule id {id} is used by the stock example rule or the blog's rules"
            ));
            id
        }
        _ => {
            problems.push(format!("rule id {id_text:?} is not in the custom range"));
            0
        }
    };
    let mut srcip = SrcipList {
        rule: id,
        negate: false,
        nets: Vec::new(),
    };
    let mut negations = Vec::new();
    for child in &rule.children {
        match child.name.as_str() {
            "srcip" | "dstip" => {
                if let Some(net) = check_ip_element(id_text, child, problems)
                    && child.name == "srcip"
                {
                    srcip.nets.push(net);
                    negations.push(child.attr("negate") == Some("yes"));
                }
            }
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
    if !srcip.nets.is_empty() {
        // One list, one negate flag (the last element's): mixed flags do not mean what they say.
        if negations.iter().any(|n| *n != negations[0]) {
            problems.push(format!(
                "rule {id_text}: <srcip> elements mix negate=\"yes\" and not (analysisd keeps one flag for the whole list)"
            ));
        }
        srcip.negate = negations[0];
        summary.srcip.push(srcip);
    }
}

/// The network an `<srcip>`/`<dstip>` names, if analysisd would accept it.
fn check_ip_element(id: &str, el: &Element, problems: &mut Vec<String>) -> Option<IpNet> {
    let text = el.text.as_str();
    if text.starts_with('!') {
        problems.push(format!(
            "rule {id}: <{0}>{text}</{0}> negates with '!' (broken since Wazuh 4.4)",
            el.name
        ));
        return None;
    }
    // analysisd's pattern for a leading "::" wants a group after it ("::/3" is refused with
    // "(1237): Invalid ip address"); only "::" alone is accepted.
    if text.starts_with("::/") {
        problems.push(format!(
            "rule {id}: <{0}>{text}</{0}> is refused by analysisd (write 0::/n)",
            el.name
        ));
        return None;
    }
    let net = text
        .parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from));
    match net {
        Ok(net) => Some(net),
        Err(_) => {
            problems.push(format!(
                "rule {id}: <{0}>{text}</{0}> is not an address or network",
                el.name
            ));
            None
        }
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
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn shipped() -> Summary {
        lint(RULE_FILES[0].text).unwrap_or_else(|p| panic!("{}", p.join("\n")))
    }

    #[test]
    fn shipped_rules_pass_the_lint_with_unique_ids_away_from_the_stock_example() {
        let s = shipped();
        assert!(s.rule_ids.contains(&TRIGGER_RULE));
        let mut ids = s.rule_ids.clone();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), s.rule_ids.len(), "duplicate rule ids");
        for id in IDS_IN_USE_ELSEWHERE {
            assert!(!ids.contains(id), "{id} collides");
        }
    }

    /// Any XML 1.0 parser must read what we ship (analysisd's own parser forgives `--` in a
    /// comment; roxmltree does not). A rules file has several roots, so it is read inside one.
    #[test]
    fn shipped_xml_is_well_formed_for_a_strict_parser() {
        for (name, text) in RULE_FILES
            .iter()
            .map(|f| (f.name, f.text))
            .chain([("integration_block.xml", INTEGRATION_BLOCK)])
        {
            let wrapped = format!("<root>{text}</root>");
            if let Err(e) = roxmltree::Document::parse(&wrapped) {
                panic!("{name}: {e}");
            }
        }
        assert!(roxmltree::Document::parse("<root><!-- a -- b --></root>").is_err());
    }

    #[test]
    fn the_trigger_fires_on_the_four_failure_rules_above_level_9() {
        let roots = xml::parse(RULE_FILES[0].text).unwrap();
        let rule = roots
            .iter()
            .flat_map(|g| g.children.iter())
            .find(|r| r.attr("id") == Some(&TRIGGER_RULE.to_string()))
            .unwrap();
        let parents: Vec<&str> = rule
            .child("if_sid")
            .unwrap()
            .text
            .split(',')
            .map(str::trim)
            .collect();
        assert_eq!(parents, ["5710", "5716", "5758", "5760"]);
        // Above 5760 (5) and 4.14's malicious-IOC 99904 (9): children go highest level first.
        assert!(rule.attr("level").unwrap().parse::<u8>().unwrap() > 9);
        assert!(rule.child("match").is_none() && rule.child("regex").is_none());
    }

    /// `OS_IPFoundList` of `src/shared/validate_op.c` (4.7.5, 4.9.2 and 4.14.7 alike), for
    /// an address of either family against a list of either family. An IPv4 address meets an
    /// IPv6 entry through the `os_ip` union: the entry's first 4 network bytes act as the IPv4
    /// network and the next 4 as its mask. An IPv6 address against an IPv4 entry reads past
    /// the 8-byte `os_ipv4` (zeroed by calloc): the first byte pair already differs for every
    /// entry we ship (a network or mask byte that is not zero), so it is "not found".
    fn engine_found(list: &[IpNet], ip: IpAddr) -> bool {
        list.iter().any(|entry| match (ip, entry) {
            (IpAddr::V4(ip), IpNet::V4(net)) => net.contains(&ip),
            (IpAddr::V6(ip), IpNet::V6(net)) => net.contains(&ip),
            (IpAddr::V4(ip), IpNet::V6(net)) => {
                let n = net.network().octets();
                let x = ip.octets();
                (0..4).all(|i| x[i] & n[4 + i] == n[i])
            }
            (IpAddr::V6(_), IpNet::V4(net)) => {
                let bytes = [net.network().octets(), net.netmask().octets()].concat();
                bytes.iter().all(|b| *b == 0)
            }
        })
    }

    /// Does a rule's `<srcip>` list let the address through?
    fn passes(list: &SrcipList, ip: IpAddr) -> bool {
        engine_found(&list.nets, ip) != list.negate
    }

    /// The event of a failed login from `ip` ends on the trigger rule: it passes 110100's list
    /// and not that of its child 110101.
    fn trigger_fires(s: &Summary, ip: IpAddr) -> bool {
        let list = |id| s.srcip.iter().find(|l| l.rule == id).unwrap();
        passes(list(TRIGGER_RULE), ip) && !passes(list(110_101), ip)
    }

    /// Public addresses the trigger skips on purpose, each inside a block it negates whole:
    /// anycast service addresses and identifier blocks no SSH client comes from (192.0.0.9,
    /// 192.0.0.10, and in 2001::/23), and 6to4 and NAT64 addresses that embed a public IPv4
    /// address (listing the special-purpose IPv4 ranges inside both blocks would add some 60
    /// entries for addresses sshd does not log: it sees the IPv4 client behind them).
    const PUBLIC_NOT_TRIGGERED: &[&str] = &[
        "192.0.0.9/32",
        "192.0.0.10/32",
        "2001::/23",
        "2002::/16",
        "64:ff9b::/96",
    ];

    fn sample_addresses() -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = Vec::new();
        let mut v4 = Vec::new();
        for (net, _) in crate::addr::IPV4_TABLE {
            let (lo, hi) = (u32::from(net.network()), u32::from(net.broadcast()));
            for x in [lo, lo.wrapping_add(1), hi, hi.wrapping_sub(1)] {
                v4.push(Ipv4Addr::from(x));
            }
            v4.push(Ipv4Addr::from(lo.wrapping_sub(1)));
            v4.push(Ipv4Addr::from(hi.wrapping_add(1)));
        }
        // A fixed pseudo-random walk over both spaces (no dependency, same every run).
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            v4.push(Ipv4Addr::from(next() as u32));
        }
        for ip in &v4 {
            let x = u32::from(*ip) as u128;
            out.push(IpAddr::V4(*ip));
            out.push(IpAddr::V6(ip.to_ipv6_mapped()));
            out.push(IpAddr::V6(Ipv6Addr::from(x))); // IPv4-compatible ::a.b.c.d
            out.push(IpAddr::V6(Ipv6Addr::from((0x2002u128 << 112) | (x << 80))));
            out.push(IpAddr::V6(Ipv6Addr::from((0x64_ff9bu128 << 96) | x)));
        }
        for (net, _) in crate::addr::IPV6_TABLE {
            let (lo, hi) = (u128::from(net.network()), u128::from(net.broadcast()));
            for x in [lo, lo.wrapping_add(1), hi, hi.wrapping_sub(1)] {
                out.push(IpAddr::V6(Ipv6Addr::from(x)));
            }
            out.push(IpAddr::V6(Ipv6Addr::from(lo.wrapping_sub(1))));
            out.push(IpAddr::V6(Ipv6Addr::from(hi.wrapping_add(1))));
        }
        for _ in 0..20_000 {
            let x = (u128::from(next()) << 64) | u128::from(next());
            out.push(IpAddr::V6(Ipv6Addr::from(x)));
            // Keep the top bits, to land in global unicast and the reserved blocks often.
            out.push(IpAddr::V6(Ipv6Addr::from(x >> (next() % 16))));
        }
        for text in [
            "::",
            "::1",
            "::2",
            "0:1::1",
            "1::1",
            "2000::",
            "3fff:ffff::1",
        ] {
            out.push(text.parse().unwrap());
        }
        out
    }

    /// The trigger, as analysisd compares addresses, agrees with `addr::classify` on every
    /// class of both registries: it never fires for a non-public address, and fires for
    /// every public one outside [`PUBLIC_NOT_TRIGGERED`]. The same table runs through the
    /// real engine in `tests/wazuh_real.rs`.
    #[test]
    fn the_trigger_fires_for_public_addresses_only_as_analysisd_compares_them() {
        let s = shipped();
        let skipped: Vec<IpNet> = PUBLIC_NOT_TRIGGERED
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let mut checked = 0;
        for ip in sample_addresses() {
            let public = crate::addr::classify(ip).is_public();
            let fires = trigger_fires(&s, ip);
            if fires {
                assert!(
                    public,
                    "{ip} ({}) fires the trigger",
                    crate::addr::classify(ip)
                );
            } else if public {
                let canonical = crate::addr::canonical(ip);
                let as_v4_in_v6 = match canonical {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                };
                let excused = skipped
                    .iter()
                    .any(|n| n.contains(&canonical) || n.contains(&IpAddr::V6(as_v4_in_v6)));
                assert!(excused, "public {ip} does not fire the trigger");
            }
            checked += 1;
        }
        assert!(checked > 100_000);
    }

    /// What the design rests on, shown on the model: an IPv6 entry inside ::/32 holds every
    /// IPv4 address (the 0::/3 that replaced "::/3" silenced every IPv4 trigger), one
    /// outside it holds none.
    #[test]
    fn an_ipv6_entry_inside_the_first_32_bits_holds_every_ipv4_address() {
        let v4: IpAddr = "45.142.120.9".parse().unwrap();
        for inside in ["0::/3", "::1/128", "::ffff:0:0/96", "::ffff:800:0/103"] {
            assert!(engine_found(&[inside.parse().unwrap()], v4), "{inside}");
        }
        for outside in [
            "0:1::/32",
            "1000::/4",
            "2000::/3",
            "64:ff9b:1::/48",
            "2001:2::/48",
        ] {
            assert!(!engine_found(&[outside.parse().unwrap()], v4), "{outside}");
        }
        // Every IPv6 entry of the trigger's own list lies outside ::/32.
        let s = shipped();
        let trigger = s.srcip.iter().find(|l| l.rule == TRIGGER_RULE).unwrap();
        assert!(trigger.negate);
        let low: IpNet = "0::/32".parse().unwrap();
        for net in &trigger.nets {
            assert!(!low.contains(net) && !net.contains(&low), "{net}");
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
  <rule id="100001" level="3">
    <srcip negate="yes">::/3</srcip>
  </rule>
  <rule id="100100" level="3">
    <srcip negate="yes">10.0.0.0/8</srcip>
    <srcip>192.168.0.0/16</srcip>
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
            "stock example",
            "::/3",
            "mix negate",
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
        assert_eq!(
            block.child("rule_id").unwrap().text,
            TRIGGER_RULE.to_string()
        );
        assert_eq!(block.child("alert_format").unwrap().text, "json");
        assert!(block.child("api_key").is_none());
        // 4.7's integratord refuses to start with either.
        assert!(block.child("timeout").is_none() && block.child("retries").is_none());
        assert!(printable().contains("etc/rules/repute_abuseipdb_rules.xml"));
    }
}
