//! The shipped systemd unit: `systemd-analyze verify` accepts it (with ExecStart pointed at
//! the binary under test), and `systemd-analyze security` rates its exposure low.

mod need;

use need::Need;

const UNIT: &str = "packaging/repute-watch.service";

#[test]
fn the_unit_verifies_and_its_exposure_is_low() {
    if !need::all(&[Need::Tool("systemd-analyze")]) {
        return;
    }
    let text = std::fs::read_to_string(UNIT).expect("unit file");
    assert!(text.contains("Type=notify") && text.contains("WatchdogSec="));
    assert!(text.contains("CapabilityBoundingSet=CAP_NET_ADMIN\n"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let unit = tmp.path().join("repute-watch.service");
    let text = text.replace("/usr/local/bin/repute", env!("CARGO_BIN_EXE_repute"));
    std::fs::write(&unit, text).expect("write unit");
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze verify");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify: {err}");
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze security");
    let report = String::from_utf8_lossy(&out.stdout);
    let level: f64 = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for repute-watch.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {report}"));
    assert!(level <= 3.0, "exposure {level}: {report}");
}
