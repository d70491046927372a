//! The `ossec.conf` editor on arbitrary text: parse, list what is there, and insert each
//! kind of block repute installs. An accepted file must come back with the block spliced in
//! and nothing else changed (the original text is a prefix and a suffix of the result), and
//! the result must parse again with one more block of that kind. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use repute::wazuh::ossec_conf::OssecConf;

const INTEGRATION: &str = "<integration>\n  <name>custom-abuseipdb</name>\n  <hook_url>https://api.abuseipdb.com/api/v2/check</hook_url>\n  <api_key>KEY</api_key>\n  <alert_format>json</alert_format>\n</integration>";
const COMMAND: &str = "<command>\n  <name>repute-block</name>\n  <executable>repute-block</executable>\n  <timeout_allowed>yes</timeout_allowed>\n</command>";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(conf) = OssecConf::parse(text) else {
        return;
    };
    let before = conf.integrations().len();
    let _ = conf.commands();
    let _ = conf.active_responses();
    let edited = conf.with_integration(INTEGRATION);
    assert_spliced(text, &edited);
    let again = OssecConf::parse(&edited).expect("the edited file parses");
    assert_eq!(again.integrations().len(), before + 1, "{edited}");
    let commands = conf.commands().len();
    let edited = conf.with_section("command", COMMAND);
    assert_spliced(text, &edited);
    let again = OssecConf::parse(&edited).expect("the edited file parses");
    assert_eq!(again.commands().len(), commands + 1, "{edited}");
});

/// `edited` is `original` with text inserted at one place. The one meant exception: a file
/// whose root is a self-closing `<ossec_config/>` is opened up (`<ossec_config>` … `</ossec_config>`)
/// to take the block (issue 10, item 7).
fn assert_spliced(original: &str, edited: &str) {
    if has_self_closing_root(original) {
        return;
    }
    let common_prefix = original
        .bytes()
        .zip(edited.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let rest = &original.as_bytes()[common_prefix..];
    assert!(
        edited.as_bytes().ends_with(rest),
        "the edit changed text outside the insertion"
    );
}

/// `<ossec_config … />` anywhere (attributes and line breaks before the `/>` included).
fn has_self_closing_root(text: &str) -> bool {
    text.match_indices("<ossec_config").any(|(at, _)| {
        text[at..]
            .find('>')
            .is_some_and(|end| text[..at + end].ends_with('/'))
    })
}
