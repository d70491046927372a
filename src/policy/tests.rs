use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap_or(IpAddr::from([0u8; 4]))
}

fn settings() -> PolicySettings {
    PolicySettings {
        ban_score: None,
        ..PolicySettings::default()
    }
}

fn fail(p: &mut Policy, addr: &str, now: i64) -> Option<Ban> {
    p.observe(
        ip(addr),
        Kind::FailedPassword,
        Outcome::Failure,
        1,
        None,
        false,
        now,
    )
}

#[test]
fn five_tries_within_find_time_ban_and_pam_echoes_do_not_count() {
    let mut p = Policy::new(settings());
    for i in 0..4 {
        assert!(fail(&mut p, "45.155.205.233", i).is_none());
        // PAM's echo of the same try, and the summary at the end of a connection.
        let echo = p.observe(
            ip("45.155.205.233"),
            Kind::PamAuthFailure,
            Outcome::Failure,
            0,
            None,
            false,
            i,
        );
        assert!(echo.is_none());
    }
    let ban = fail(&mut p, "45.155.205.233", 5).expect("the fifth try bans");
    assert_eq!(ban.addresses, vec![ip("45.155.205.233")]);
    assert_eq!(ban.duration, Duration::from_secs(600));
    assert_eq!(ban.evidence.failures, 5);
    assert!(p.is_banned(ip("45.155.205.233"), 6));
    // Lines still arriving for the banned address decide nothing more.
    assert!(fail(&mut p, "45.155.205.233", 7).is_none());
}

#[test]
fn tries_spread_beyond_find_time_do_not_ban() {
    let mut p = Policy::new(settings());
    for i in 0..20 {
        assert!(fail(&mut p, "45.155.205.233", i * 200).is_none(), "try {i}");
    }
}

#[test]
fn probes_weigh_half_a_try() {
    let mut p = Policy::new(settings());
    for i in 0..9 {
        let b = p.observe(
            ip("45.155.205.233"),
            Kind::KexIdentification,
            Outcome::Probe,
            1,
            None,
            false,
            i,
        );
        assert!(b.is_none(), "probe {i}");
    }
    let ban = p.observe(
        ip("45.155.205.233"),
        Kind::KexIdentification,
        Outcome::Probe,
        1,
        None,
        false,
        9,
    );
    assert_eq!(ban.map(|b| b.evidence.probes), Some(10));
}

#[test]
fn repeat_offenders_are_banned_longer_up_to_the_cap() {
    let mut p = Policy::new(PolicySettings {
        ban_time_max: Duration::from_secs(1800),
        ..settings()
    });
    let mut now = 0;
    let mut lengths = Vec::new();
    for _ in 0..4 {
        let ban = (0..5)
            .find_map(|_| fail(&mut p, "45.155.205.233", now))
            .expect("ban");
        lengths.push(ban.duration.as_secs());
        now = ban.until;
        assert_eq!(p.expired(now).len(), 1);
    }
    assert_eq!(lengths, [600, 1200, 1800, 1800]);
}

#[test]
fn ipv6_is_counted_per_64_and_newcomers_of_a_banned_64_are_banned() {
    let mut p = Policy::new(settings());
    for i in 1..=4 {
        assert!(fail(&mut p, &format!("2a06:4880:0:1::{i}"), 0).is_none());
    }
    let ban = fail(&mut p, "2a06:4880:0:1::5", 1).expect("fifth try of the /64");
    assert_eq!(ban.network.to_string(), "2a06:4880:0:1::/64");
    assert_eq!(ban.addresses.len(), 5);
    let late = fail(&mut p, "2a06:4880:0:1::99", 2).expect("newcomer banned");
    assert_eq!(late.addresses, vec![ip("2a06:4880:0:1::99")]);
    assert_eq!(late.until, ban.until);
    // Another /64 is counted apart.
    assert!(fail(&mut p, "2a06:4880:0:2::1", 2).is_none());
    // Per address when configured so.
    let mut per_address = Policy::new(PolicySettings {
        ipv6_prefix: 128,
        ..settings()
    });
    for i in 1..=5 {
        assert!(fail(&mut per_address, &format!("2a06:4880::{i}"), 0).is_none());
    }
}

#[test]
fn a_bad_score_bans_at_the_first_attack_and_no_score_keeps_counting() {
    let mut p = Policy::new(PolicySettings {
        ban_score: Some(90),
        ..settings()
    });
    assert!(p.wants_lookup(ip("45.155.205.233")));
    let ban = p.observe(
        ip("45.155.205.233"),
        Kind::FailedPassword,
        Outcome::Failure,
        1,
        Some(100),
        true,
        0,
    );
    assert_eq!(ban.map(|b| b.evidence.score), Some(Some(100)));
    // Provider down: no score, looked up once, counted as usual.
    assert!(
        p.observe(
            ip("185.220.101.4"),
            Kind::FailedPassword,
            Outcome::Failure,
            1,
            None,
            true,
            0
        )
        .is_none()
    );
    assert!(!p.wants_lookup(ip("185.220.101.4")));
    assert!(
        (1..5)
            .find_map(|t| fail(&mut p, "185.220.101.4", t))
            .is_some()
    );
    // A low score changes nothing.
    assert!(
        p.observe(
            ip("203.0.113.77"),
            Kind::FailedPassword,
            Outcome::Failure,
            1,
            Some(10),
            true,
            0
        )
        .is_none()
    );
}

#[test]
fn memory_is_bounded_and_the_least_recently_active_goes_first() {
    let mut p = Policy::new(PolicySettings {
        max_tracked: 100,
        ..settings()
    });
    for i in 0..4 {
        fail(&mut p, "45.155.205.233", i);
    }
    for n in 0..1000u32 {
        let addr = IpAddr::from((0x2d00_0000u32 + n).to_be_bytes());
        p.observe(
            addr,
            Kind::FailedPassword,
            Outcome::Failure,
            1,
            None,
            false,
            5,
        );
        // The busy address keeps being active.
        if n % 50 == 0 {
            p.observe(
                ip("45.155.205.233"),
                Kind::Postponed,
                Outcome::Info,
                0,
                None,
                false,
                5,
            );
            fail(&mut p, "45.155.205.233", 5);
        }
        assert!(p.tracked() <= 100);
    }
    assert_eq!(p.evicted, 901);
    assert!(p.is_banned(ip("45.155.205.233"), 6));
}

#[test]
fn a_restored_ban_is_not_decided_again_and_its_end_is_announced() {
    let mut p = Policy::new(settings());
    p.restore_ban(ip("45.155.205.233"), 100);
    assert!(p.is_banned(ip("45.155.205.233"), 50));
    assert!(fail(&mut p, "45.155.205.233", 50).is_none());
    assert!(p.expired(99).is_empty());
    let ended = p.expired(100);
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].addresses, vec![ip("45.155.205.233")]);
    // The next ban is longer: one was served.
    let again = (0..5)
        .find_map(|t| fail(&mut p, "45.155.205.233", 200 + t))
        .expect("ban");
    assert_eq!(again.duration, Duration::from_secs(1200));
}

/// Five password tries of unknown users, written as Debian 12's sshd with PAM writes them
/// (five lines a try, PAM's from a pid of its own), through the parser's per-connection
/// logic: `max_retry = 5` bans at the fifth try, not at the fifth line or the fourth try.
#[test]
fn five_tries_as_sshd_and_pam_write_them_ban_at_the_fifth_try() {
    let mut parser = crate::sshd::Parser::default();
    let mut p = Policy::new(settings());
    let addr = "45.155.205.233";
    let mut banned_at = None;
    let mut lines_seen = 0;
    for t in 1..=5u32 {
        let (pid, pam, port) = (4100 + t, 9100 + t, 50_000 + t);
        let stamp = format!("Nov 30 06:00:0{t} web1");
        let lines = [
            format!("{stamp} sshd[{pid}]: Invalid user admin{t} from {addr} port {port}"),
            format!("{stamp} sshd[{pam}]: pam_unix(sshd:auth): check pass; user unknown"),
            format!(
                "{stamp} sshd[{pam}]: pam_unix(sshd:auth): authentication failure; logname= \
                 uid=0 euid=0 tty=ssh ruser= rhost={addr}"
            ),
            format!(
                "{stamp} sshd[{pid}]: Failed password for invalid user admin{t} from {addr} \
                 port {port} ssh2"
            ),
            format!(
                "{stamp} sshd[{pid}]: Connection closed by invalid user admin{t} {addr} port \
                 {port} [preauth]"
            ),
        ];
        for line in &lines {
            lines_seen += 1;
            let Some(ev) = parser.parse_line_ref(line) else {
                continue;
            };
            let Some(src) = ev.srcip else { continue };
            let ban = p.observe(src, ev.kind, ev.outcome, ev.attempts, None, false, 100);
            if let Some(ban) = ban {
                assert!(banned_at.is_none(), "banned twice");
                banned_at = Some((t, lines_seen, ban.evidence.failures));
            }
        }
    }
    let (try_no, line_no, failures) = banned_at.expect("five tries ban");
    assert_eq!(
        try_no, 5,
        "banned at try {try_no} (line {line_no}), not the fifth"
    );
    assert_eq!(failures, 5);
}

/// The count of earlier bans, kept in the store, given back after a restart: the third ban
/// is as long as without the restart (it was a first ban again, 600 s, before).
#[test]
fn a_restored_ban_count_keeps_the_ban_time_growing() {
    let mut p = Policy::new(settings());
    p.restore_ban_count("45.155.205.233/32".parse().expect("net"), 2);
    let ban = (0..5)
        .find_map(|_| fail(&mut p, "45.155.205.233", 0))
        .expect("ban");
    assert_eq!(ban.duration.as_secs(), 2400);
    assert_eq!(ban.evidence.bans_before, 2);
    // Saved per /64, given back per /64 of the address.
    let mut p = Policy::new(settings());
    p.restore_ban_count("2a01:4f8::/64".parse().expect("net"), 1);
    let ban = (0..5)
        .find_map(|_| fail(&mut p, "2a01:4f8::7", 0))
        .expect("ban");
    assert_eq!(ban.duration.as_secs(), 1200);
}
