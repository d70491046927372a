//! The fleet store against real `redis-server` processes started by the tests (loopback ports
//! and Unix sockets in temporary directories, no persistence, killed on drop): two Wazuh
//! managers sharing one cache and quota through one Redis, Redis dying in the middle of a
//! storm, a 3-node Redis Cluster, an ACL user with a password, and ban decisions recorded on
//! one host and followed by another.

mod block_support;
mod need;
mod support;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use need::Need;
use repute::cache::{
    CacheKey, FailureNote, LeaseState, LookupFailure, ReputationCache, Settlement,
};
use repute::decisions::{Ban, Change, Decisions, Follower, RedisDecisions, Update};
use repute::fleet::{RedisOptions, RedisStore, RedisTarget};
use repute::quota::QuotaStore;
use repute::reputation::Reputation;
use support::mock_abuseipdb::MockAbuseIpdb;
use support::redis_server::{ACL_USER, RedisCluster, RedisServer};
use support::wazuh_tree::{WazuhTree, split_message};

const KEY: &str = "fleet0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd0";
const ADDRESSES: usize = 20;
const AT_ONCE: usize = 8;

fn redis_tools() -> bool {
    need::all(&[Need::Tool("redis-server"), Need::Tool("redis-cli")])
}

fn address(i: usize) -> String {
    format!("45.79.{}.{}", 20 + i % ADDRESSES, 9 + i % ADDRESSES)
}

fn alert(n: usize, ip: &str) -> String {
    format!(
        r#"{{"rule":{{"level":10,"description":"sshd: Authentication failed from a public IP address {ip}.","id":"100001"}},"agent":{{"id":"001","name":"node-1","ip":"10.0.0.1"}},"id":"1764325975.{n}","full_log":"Nov 28 10:32:54 node sshd[1]: Failed password for root from {ip} port {port} ssh2","data":{{"srcip":"{ip}"}},"location":"/var/log/auth.log"}}"#,
        port = 40_000 + n
    )
}

/// A Wazuh home whose integration options point at `store` (with `extra` options JSON).
fn manager(store: &str, extra: &str) -> (WazuhTree, String) {
    let tree = WazuhTree::new();
    tree.install_binary("custom-abuseipdb");
    let options = tree.path().join("integrations/custom-abuseipdb.options");
    std::fs::write(&options, format!(r#"{{"store":"{store}"{extra}}}"#)).expect("options");
    (tree, options.to_string_lossy().into_owned())
}

/// One alert file per (n, ip) in the tree.
fn alert_files(tree: &WazuhTree, alerts: &[(usize, String)]) -> Vec<String> {
    alerts
        .iter()
        .map(|(n, ip)| {
            let path = tree.write_alert(&format!("custom-abuseipdb-{n}.alert"), &alert(*n, ip));
            path.to_string_lossy().into_owned()
        })
        .collect()
}

/// Runs the integration once per file, `AT_ONCE` at a time, as integratord would (timeout
/// `budget` seconds); `between` is called after each start with the count started so far.
fn storm(
    tree: &WazuhTree,
    files: &[String],
    options: &str,
    url: &str,
    budget: &str,
    mut between: impl FnMut(usize),
) -> Vec<ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut running: Vec<Child> = Vec::new();
    let mut done = Vec::new();
    let mut next = 0;
    while next < files.len() || !running.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the storm did not finish in time"
        );
        while next < files.len() && running.len() < AT_ONCE {
            let args = [
                files[next].as_str(),
                KEY,
                url,
                "",
                options,
                budget,
                "1",
                "> /dev/null 2>&1",
            ];
            let child = tree
                .integratord_command("custom-abuseipdb", &args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn");
            running.push(child);
            next += 1;
            between(next);
        }
        running.retain_mut(|c| match c.try_wait() {
            Ok(Some(status)) => {
                done.push(status);
                false
            }
            _ => true,
        });
        std::thread::sleep(Duration::from_millis(2));
    }
    done
}

/// The events of a tree, by alert id; each alert must have exactly one.
fn events_by_alert(tree: &WazuhTree, expected: usize) -> HashMap<String, serde_json::Value> {
    let messages = tree.wait_for(expected, Duration::from_secs(20));
    let mut by_alert = HashMap::new();
    for message in &messages {
        let (_, event) = split_message(message);
        let id = event["abuseipdb"]["source"]["alert_id"]
            .as_str()
            .expect("alert id")
            .to_string();
        assert!(
            by_alert.insert(id.clone(), event).is_none(),
            "two events for {id}"
        );
    }
    assert_eq!(by_alert.len(), expected, "every alert answered");
    by_alert
}

fn target(url: &str, options: &RedisOptions) -> RedisTarget {
    RedisTarget::parse(url, options).expect("target")
}

#[test]
fn two_managers_on_one_redis_pay_one_call_per_address() {
    if !redis_tools() {
        return;
    }
    let redis = RedisServer::start();
    redis.require_acl_user("manager-pw-7f3a");
    let mock = MockAbuseIpdb::start();
    mock.expect_key(KEY);
    let store = format!("redis://{ACL_USER}@127.0.0.1:{}/0", redis.port());
    let pw_option = r#","store_password_file":"etc/repute/redis.password""#;
    let managers: Vec<(WazuhTree, String)> = (0..2).map(|_| manager(&store, pw_option)).collect();
    for (tree, _) in &managers {
        std::fs::create_dir_all(tree.path().join("etc/repute")).expect("dir");
        std::fs::write(
            tree.path().join("etc/repute/redis.password"),
            "manager-pw-7f3a\n",
        )
        .expect("password file");
    }
    // Both managers' storms run at the same time: 8 processes each, every address twice.
    let per_manager = 2 * ADDRESSES;
    std::thread::scope(|s| {
        for (m, (tree, options)) in managers.iter().enumerate() {
            let url = mock.check_url();
            s.spawn(move || {
                let alerts: Vec<(usize, String)> = (0..per_manager)
                    .map(|i| (m * 1000 + i, address(i)))
                    .collect();
                let files = alert_files(tree, &alerts);
                let statuses = storm(tree, &files, options, &url, "20", |_| {});
                assert!(statuses.iter().all(ExitStatus::success), "{statuses:?}");
            });
        }
    });
    let mut from_api = 0;
    for (tree, _) in &managers {
        for event in events_by_alert(tree, per_manager).values() {
            assert!(event["abuseipdb"].get("error").is_none(), "{event}");
            if event["abuseipdb"]["answer_source"] == "api" {
                from_api += 1;
            }
        }
        assert!(
            !tree.log().contains("manager-pw-7f3a"),
            "password in the log"
        );
    }
    let per_ip = mock.checks_per_ip();
    assert_eq!(per_ip.len(), ADDRESSES, "{per_ip:?}");
    assert!(
        per_ip.values().all(|&n| n == 1),
        "one call per address: {per_ip:?}"
    );
    assert_eq!(from_api, ADDRESSES);
}

#[test]
fn the_acl_user_needs_its_password() {
    if !redis_tools() {
        return;
    }
    let redis = RedisServer::start();
    redis.require_acl_user("acl-pw-1234");
    let url = format!("redis://{ACL_USER}@127.0.0.1:{}/0", redis.port());
    let without = RedisStore::open(target(&url, &RedisOptions::default()));
    let err = without.expect_err("no password, no entry").to_string();
    assert!(err.contains(ACL_USER) && !err.contains("acl-pw"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "acl-pw-1234\n").expect("write");
    let options = RedisOptions {
        password_file: Some(pw),
        ..RedisOptions::default()
    };
    let cache = RedisStore::open(target(&url, &options)).expect("with the password");
    let key = CacheKey::new("203.0.113.50".parse().expect("ip"), 90);
    let rep = Reputation::bare("203.0.113.50".parse().expect("ip"), 42);
    cache.put(&key, &rep, Duration::from_secs(60)).expect("put");
    assert_eq!(cache.get(&key).expect("get").expect("hit").reputation, rep);
    // The ACL allows `repute:*` only: another prefix is refused by Redis itself.
    let other = RedisOptions {
        prefix: Some("elsewhere:".into()),
        ..options
    };
    let outside = RedisStore::open(target(&url, &other)).expect("connects");
    assert!(outside.get(&key).is_err(), "keys outside the ACL pattern");
}

#[test]
fn redis_killed_mid_storm_every_alert_still_answered_then_sharing_resumes() {
    if !redis_tools() {
        return;
    }
    let mut redis = RedisServer::start();
    let mock = MockAbuseIpdb::start();
    let store = format!("redis+unix://{}", redis.socket().display());
    let (tree, options) = manager(&store, "");
    let url = mock.check_url();
    // 4 alerts per address; Redis is killed once a quarter of them have started.
    let alerts: Vec<(usize, String)> = (0..4 * ADDRESSES).map(|i| (i, address(i))).collect();
    let files = alert_files(&tree, &alerts);
    let mut killed = false;
    let statuses = storm(&tree, &files, &options, &url, "10", |started| {
        if !killed && started >= ADDRESSES {
            redis.kill();
            killed = true;
        }
    });
    assert!(killed);
    assert!(statuses.iter().all(ExitStatus::success), "{statuses:?}");
    for event in events_by_alert(&tree, alerts.len()).values() {
        // No timeout event, no error: each run looked up without the store and answered.
        assert!(event["abuseipdb"].get("error").is_none(), "{event}");
    }

    redis.restart();
    let before = mock.checks_per_ip();
    let fresh: Vec<(usize, String)> = (0..2 * ADDRESSES)
        .map(|i| {
            (
                10_000 + i,
                format!("66.42.{}.{}", 1 + i % ADDRESSES, 3 + i % ADDRESSES),
            )
        })
        .collect();
    let files = alert_files(&tree, &fresh);
    let statuses = storm(&tree, &files, &options, &url, "10", |_| {});
    assert!(statuses.iter().all(ExitStatus::success), "{statuses:?}");
    events_by_alert(&tree, alerts.len() + fresh.len());
    let after = mock.checks_per_ip();
    for (_, ip) in &fresh {
        assert_eq!(before.get(ip), None);
        assert_eq!(
            after.get(ip),
            Some(&1),
            "shared again after Redis returned: {ip}"
        );
    }
    let keys = redis.cli(&["--scan", "--pattern", "repute:rep:*"]);
    assert_eq!(keys.lines().count(), ADDRESSES, "{keys}");
}

#[test]
fn a_store_down_at_start_costs_no_answer_and_error_mode_spends_nothing() {
    if !redis_tools() {
        return;
    }
    let mock = MockAbuseIpdb::start();
    // A port nobody listens on.
    let port = support::redis_server::free_port();
    let store = format!("redis://127.0.0.1:{port}/0");
    let (tree, options) = manager(&store, "");
    let files = alert_files(&tree, &[(1, address(1))]);
    let statuses = storm(&tree, &files, &options, &mock.check_url(), "10", |_| {});
    assert!(statuses.iter().all(ExitStatus::success), "{statuses:?}");
    let events = events_by_alert(&tree, 1);
    let event = events.values().next().expect("event");
    assert_eq!(event["abuseipdb"]["answer_source"], "api", "{event}");

    let (tree, options) = manager(&store, r#","store_failure":"error""#);
    let files = alert_files(&tree, &[(2, address(2))]);
    storm(&tree, &files, &options, &mock.check_url(), "10", |_| {});
    let events = events_by_alert(&tree, 1);
    let event = events.values().next().expect("event");
    assert_eq!(event["abuseipdb"]["error"], "store_unavailable", "{event}");
    assert_eq!(mock.checks_for(&address(2)), 0, "nothing spent");
}

#[test]
fn a_redis_cluster_serves_cache_leases_quota_and_decisions() {
    if !redis_tools() {
        return;
    }
    let cluster = RedisCluster::start();
    let url = cluster.url();
    let cache = RedisStore::open(target(&url, &RedisOptions::default())).expect("cluster");
    // Many keys, so that they land on every node's slots.
    for n in 0..30u8 {
        let ip: IpAddr = IpAddr::from([198, 51, 100, n]);
        let key = CacheKey::new(ip, 90);
        cache
            .put(&key, &Reputation::bare(ip, n), Duration::from_secs(60))
            .expect("put");
        let hit = cache.get(&key).expect("get").expect("hit");
        assert_eq!(hit.reputation.abuse_confidence_score, n);
        let take = |holder: &str| {
            cache
                .take_lease(&key, holder, Duration::from_secs(5))
                .expect("lease")
        };
        assert_eq!(take("a"), LeaseState::Taken);
        assert_eq!(take("b"), LeaseState::HeldBy("a".into()));
        let note = FailureNote {
            target: Some("tag".into()),
            failure: LookupFailure::Provider {
                status: Some(503),
                detail: "down".into(),
            },
        };
        let failed = Settlement::Failed {
            note: &note,
            hold: Duration::from_secs(5),
        };
        cache.settle(&key, "a", failed, None).expect("fail");
        assert_eq!(take("b"), LeaseState::Failed(note));
    }
    let mut spread = 0;
    for node in &cluster.nodes {
        if node.cli(&["DBSIZE"]).parse::<u64>().unwrap_or(0) > 0 {
            spread += 1;
        }
    }
    assert_eq!(spread, 3, "keys on every node");
    let state = repute::quota::QuotaState {
        limit: Some(1000),
        remaining: Some(3),
        ..Default::default()
    };
    cache
        .record_quota("abuseipdb/check", &state)
        .expect("quota");
    assert_eq!(cache.quota("abuseipdb/check").expect("quota"), Some(state));

    let host_a = RedisDecisions::new(target(&url, &RedisOptions::default()));
    let host_b = RedisDecisions::new(target(&url, &RedisOptions::default()));
    let mut follower = Follower::new(&host_b);
    assert_eq!(
        follower.poll(Duration::ZERO).expect("poll"),
        Update::Snapshot(vec![])
    );
    let ban = Ban::new(
        "203.0.113.99".parse().expect("ip"),
        Duration::from_secs(600),
        "cluster",
    );
    assert!(host_a.record(&ban).expect("record"));
    let update = follower.poll(Duration::from_secs(1)).expect("poll");
    assert_eq!(update, Update::Changes(vec![Change::Ban(ban)]));

    // The integration itself on the cluster.
    let mock = MockAbuseIpdb::start();
    let (tree, options) = manager(&url, "");
    let alerts: Vec<(usize, String)> = (0..2 * ADDRESSES).map(|i| (i, address(i))).collect();
    let files = alert_files(&tree, &alerts);
    let statuses = storm(&tree, &files, &options, &mock.check_url(), "20", |_| {});
    assert!(statuses.iter().all(ExitStatus::success), "{statuses:?}");
    events_by_alert(&tree, alerts.len());
    assert!(mock.checks_per_ip().values().all(|&n| n == 1));
}

/// A ban decided on host A reaches host B's follower within one poll, ends at the same time
/// for both, and a host that was cut off (Redis restarted empty under it) reloads.
#[test]
fn decisions_recorded_on_one_host_are_followed_by_another_and_expire_alike() {
    if !redis_tools() {
        return;
    }
    let mut redis = RedisServer::start();
    let url = format!("redis+unix://{}", redis.socket().display());
    let host_a = RedisDecisions::new(target(&url, &RedisOptions::default()));
    let host_b = RedisDecisions::new(target(&url, &RedisOptions::default()));
    let mut follower = Follower::new(&host_b);
    assert_eq!(
        follower.poll(Duration::ZERO).expect("poll"),
        Update::Snapshot(vec![])
    );

    let short: IpAddr = "203.0.113.10".parse().expect("ip");
    let ban = Ban {
        origin: "host-a".into(),
        ..Ban::new(short, Duration::from_millis(1500), "5 failures in 10m")
    };
    assert!(host_a.record(&ban).expect("record"));
    let waited = Instant::now();
    let update = follower.poll(Duration::from_secs(2)).expect("poll");
    assert_eq!(update, Update::Changes(vec![Change::Ban(ban.clone())]));
    assert!(
        waited.elapsed() < Duration::from_secs(2),
        "XREAD BLOCK woke at once"
    );
    assert_eq!(host_a.current().expect("a"), host_b.current().expect("b"));
    // Expiry is the decided time, the same for both: wait it out (bounded), then neither has it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !host_b.current().expect("b").is_empty() {
        assert!(Instant::now() < deadline, "the ban never ended");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(host_a.current().expect("a").is_empty());

    // Revocation travels too.
    let long: IpAddr = "2001:db8::66".parse().expect("ip");
    host_a
        .record(&Ban::new(long, Duration::from_secs(600), "by hand"))
        .expect("record");
    assert!(host_a.revoke(long, "host-a").expect("revoke"));
    let update = follower.poll(Duration::from_secs(1)).expect("poll");
    let Update::Changes(changes) = update else {
        panic!("{update:?}")
    };
    assert!(matches!(changes.last(), Some(Change::Unban { ip, .. }) if *ip == long));

    // Cut off: Redis dies (losing everything) and comes back; A decides while B is away.
    redis.kill();
    assert!(follower.poll(Duration::from_millis(100)).is_err());
    redis.restart();
    let after: IpAddr = "198.51.100.200".parse().expect("ip");
    let decided = Ban::new(after, Duration::from_secs(600), "while B was away");
    // A's link paused after its own failure; it retries after the pause.
    let deadline = Instant::now() + Duration::from_secs(10);
    while host_a.record(&decided).is_err() {
        assert!(Instant::now() < deadline, "A never reconnected");
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let update = loop {
        match follower.poll(Duration::from_millis(200)) {
            Ok(u) => break u,
            Err(_) => {
                assert!(Instant::now() < deadline, "B never reconnected");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    assert_eq!(update, Update::Snapshot(vec![decided]));
}

/// `when_shared` (what `repute block add/del` and the active response use) records in Redis
/// only when the store is Redis.
#[test]
fn the_shared_store_is_used_only_when_the_store_is_redis() {
    if !redis_tools() {
        return;
    }
    let redis = RedisServer::start();
    let mut config = repute::config::Config::default();
    config.cache =
        repute::config::StoreSetting::Redis(target(&redis.url(), &RedisOptions::default()));
    let ip: IpAddr = "192.0.2.200".parse().expect("ip");
    let ban = Ban::new(ip, Duration::from_secs(60), "by hand");
    let shared = repute::decisions::when_shared(&config, |d| d.record(&ban));
    assert!(matches!(shared, Some(Ok(true))), "{shared:?}");
    assert!(
        redis
            .cli(&["ZSCORE", "repute:{bans}:until", "192.0.2.200"])
            .parse::<i64>()
            .is_ok()
    );
    config.cache = repute::config::StoreSetting::Sqlite(Path::new("/nonexistent/x").into());
    assert!(repute::decisions::when_shared(&config, |d| d.current()).is_none());
}

/// Makes a CA and a server certificate for `localhost` / 127.0.0.1 in `dir` with openssl.
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=repute test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

/// `rediss://` against Debian's redis-server built with TLS: verified against the CA from
/// `store_ca_file`; without it (compiled-in public roots only) the connection is refused.
#[test]
fn rediss_verifies_the_server_against_the_configured_ca() {
    if !need::all(&[
        Need::Tool("redis-server"),
        Need::Tool("redis-cli"),
        Need::Tool("openssl"),
    ]) {
        return;
    }
    let certs = tempfile::tempdir().expect("tempdir");
    make_certs(certs.path());
    let tls_port = support::redis_server::free_port();
    let file = |name: &str| certs.path().join(name).to_string_lossy().into_owned();
    let (cert, key, ca) = (file("server.crt"), file("server.key"), file("ca.crt"));
    let port_text = tls_port.to_string();
    let _redis = RedisServer::start_with(&[
        "--tls-port",
        &port_text,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ]);
    let url = format!("rediss://localhost:{tls_port}");
    let untrusted = RedisStore::open(target(&url, &RedisOptions::default()));
    assert!(untrusted.is_err(), "a private CA is not trusted by default");
    let options = RedisOptions {
        ca_file: Some(certs.path().join("ca.crt")),
        ..RedisOptions::default()
    };
    let cache = RedisStore::open(target(&url, &options)).expect("TLS with the CA");
    let key = CacheKey::new("203.0.113.77".parse().expect("ip"), 90);
    let rep = Reputation::bare("203.0.113.77".parse().expect("ip"), 12);
    cache
        .put(&key, &rep, Duration::from_secs(60))
        .expect("put over TLS");
    assert_eq!(cache.get(&key).expect("get").expect("hit").reputation, rep);
}

/// `repute block add` on one host (a network namespace) records the ban in Redis with its
/// origin; `repute block del` on another host, where it was never blocked locally, ends the
/// fleet's decision and says done.
#[test]
fn block_add_and_del_record_decisions_in_the_shared_store() {
    if !redis_tools() {
        return;
    }
    let Some(host_a) = block_support::Netns::new() else {
        return;
    };
    let Some(host_b) = block_support::Netns::new() else {
        return;
    };
    let redis = RedisServer::start();
    // The Unix socket is reachable from both namespaces (one file system, two networks).
    let config = format!("store = \"redis+unix://{}\"\n", redis.socket().display());
    host_a.write_config(&config);
    host_b.write_config(&config);
    let ip = "45.155.205.233";
    let out = host_a.run(&["block", "add", ip, "--for", "1h", "--reason", "by hand"]);
    assert!(out.status.success(), "{}", block_support::stderr(&out));
    assert!(host_a.nft_elements("repute").iter().any(|e| e.contains(ip)));
    let until: i64 = redis
        .cli(&["ZSCORE", "repute:{bans}:until", ip])
        .parse()
        .expect("a shared decision");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    assert!(until > now + 3_500_000, "about an hour ahead");
    let details = redis.cli(&["HGET", "repute:{bans}:detail", ip]);
    assert!(details.contains("by hand"), "{details}");
    let out = host_b.run(&["block", "del", ip]);
    assert!(out.status.success(), "{}", block_support::stderr(&out));
    assert_eq!(redis.cli(&["ZSCORE", "repute:{bans}:until", ip]), "");
    let log = redis.cli(&["XRANGE", "repute:{bans}:log", "-", "+"]);
    assert!(log.contains("unban"), "{log}");
}

/// Two hosts reporting through one Redis: one claim wins, a settled report holds the address
/// for its window on every host, a released claim frees it (the SQLite ledger's rules).
#[test]
fn the_report_ledger_is_shared_through_redis() {
    if !redis_tools() {
        return;
    }
    use repute::fleet::RedisLedger;
    use repute::report::{Claim, Mark, ReportLedger};
    let redis = RedisServer::start();
    let host_a = RedisLedger::new(target(&redis.url(), &RedisOptions::default()));
    let host_b = RedisLedger::new(target(&redis.url(), &RedisOptions::default()));
    let ip: IpAddr = "185.220.101.4".parse().expect("ip");
    let now = 1_800_000_000;
    assert_eq!(
        host_a.claim(ip, "a", now, 60).expect("claim"),
        Claim::Granted
    );
    assert!(matches!(
        host_b.claim(ip, "b", now + 1, 60).expect("claim"),
        Claim::Held(Mark::Pending { .. })
    ));
    host_b.release(ip, "b").expect("not b's claim");
    host_a.settle(ip, "a", now + 2, now + 902).expect("settle");
    assert_eq!(
        host_b.claim(ip, "b", now + 500, 60).expect("claim"),
        Claim::Held(Mark::Reported {
            at: now + 2,
            until: now + 902
        })
    );
    let mapped: IpAddr = "::ffff:185.220.101.4".parse().expect("ip");
    assert!(matches!(
        host_b.claim(mapped, "b", now + 500, 60).expect("claim"),
        Claim::Held(_)
    ));
    assert_eq!(
        host_b.claim(ip, "b", now + 902, 60).expect("claim"),
        Claim::Granted
    );
    host_b.release(ip, "b").expect("release");
    assert_eq!(host_b.mark(ip, now + 903).expect("mark"), None);
    let state = repute::quota::QuotaState {
        limit: Some(1000),
        remaining: Some(999),
        ..Default::default()
    };
    host_a.record_quota(&state).expect("quota");
    assert_eq!(host_b.quota().expect("quota"), Some(state));
}

/// A Redis that accepts connections but never answers (frozen with SIGSTOP): each run pays one
/// store timeout (a tenth of its budget), then answers from the provider, well before
/// integratord's timeout; without bounded commands the run would wait for the watchdog's
/// timeout event.
#[test]
fn a_frozen_redis_costs_one_timeout_and_every_alert_is_answered() {
    if !redis_tools() {
        return;
    }
    let redis = RedisServer::start();
    let mock = MockAbuseIpdb::start();
    let (tree, options) = manager(&redis.url(), "");
    redis.freeze();
    let alerts: Vec<(usize, String)> = (0..3).map(|i| (i, address(i))).collect();
    let files = alert_files(&tree, &alerts);
    let statuses = storm(&tree, &files, &options, &mock.check_url(), "3", |_| {});
    redis.thaw();
    assert!(statuses.iter().all(ExitStatus::success), "{statuses:?}");
    for event in events_by_alert(&tree, alerts.len()).values() {
        assert!(event["abuseipdb"].get("error").is_none(), "{event}");
        assert_eq!(event["abuseipdb"]["answer_source"], "api", "{event}");
    }
}

/// The active response, driven as execd drives it inside a namespace: `add` (after
/// `continue`) records the ban in Redis with the alert's rule as its reason, `delete` ends it.
#[test]
fn the_active_response_records_and_ends_shared_decisions() {
    use block_support::execd;
    if !redis_tools() {
        return;
    }
    let Some(netns) = block_support::Netns::new() else {
        return;
    };
    let redis = RedisServer::start();
    netns.write_config(&format!(
        "store = \"redis+unix://{}\"\n",
        redis.socket().display()
    ));
    let home = netns.dir.path().join("ossec");
    std::fs::create_dir_all(home.join("active-response/bin")).expect("bin");
    std::fs::create_dir_all(home.join("logs")).expect("logs");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_repute"), home.join(execd::PROGRAM))
        .expect("symlink");
    let ip = "45.155.205.233";
    let alert = |command: &str| {
        let alert = serde_json::json!({
            "timestamp": "2026-11-28T10:00:00.000+0000",
            "rule": { "level": 10, "description": "sshd: brute force", "id": "5763" },
            "agent": { "id": "000", "name": "manager" },
            "id": "1764324000.1234",
            "data": { "srcip": ip },
            "location": "/var/log/auth.log"
        });
        format!("{}\n", execd::message(command, &[] as &[&str], alert))
    };
    let run = execd::execute(
        &netns,
        &home,
        execd::PROGRAM.as_ref(),
        alert("add").as_bytes(),
        Some(&execd::reply("continue")),
        |_| {},
    );
    assert_eq!(run.code, Some(0));
    assert_eq!(netns.nft_elements("repute"), vec![ip]);
    let details = redis.cli(&["HGET", "repute:{bans}:detail", ip]);
    assert!(details.contains("wazuh rule 5763"), "{details}");
    let run = execd::execute(
        &netns,
        &home,
        execd::PROGRAM.as_ref(),
        alert("delete").as_bytes(),
        None,
        |_| {},
    );
    assert_eq!(run.code, Some(0));
    assert_eq!(redis.cli(&["ZSCORE", "repute:{bans}:until", ip]), "");
}

/// On a single Redis, a cache miss writes twice, as on SQLite: one script takes the lease, one
/// settles it (answer, lease, quota in one round trip). Counted with `MONITOR`, which shows
/// each command a client sent (`[0 127.0.0.1:port]`) apart from those a script ran
/// (`[0 lua]`).
#[test]
fn a_miss_on_redis_writes_in_two_round_trips() {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;
    if !redis_tools() {
        return;
    }
    let redis = RedisServer::start();
    let mock = MockAbuseIpdb::start();
    let config = repute::config::Config {
        api_key: Some(repute::config::ApiKey::new(KEY)),
        api_url: mock.base_url(),
        cache: repute::config::StoreSetting::Redis(target(&redis.url(), &RedisOptions::default())),
        ..repute::config::Config::default()
    };
    let engine = repute::engine::Engine::new(&config).expect("engine");
    let mut monitor = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "monitor"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-cli monitor");
    let (lines_tx, lines) = mpsc::channel();
    let stdout = monitor.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    assert_eq!(
        lines.recv_timeout(Duration::from_secs(10)).as_deref(),
        Ok("OK"),
        "MONITOR started"
    );
    let miss = engine.lookup("45.33.32.156".parse().expect("ip"));
    assert_eq!(miss.source, repute::engine::Source::Api, "{miss:?}");
    redis.cli(&["ECHO", "end-of-miss"]);
    let mut seen = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) {
        if line.contains("end-of-miss") {
            break;
        }
        seen.push(line);
    }
    let _ = monitor.kill();
    let _ = monitor.wait();
    let sent: Vec<&String> = seen
        .iter()
        .filter(|l| !l.contains(" lua] ") && l.contains("repute:"))
        .collect();
    let writes: Vec<&&String> = sent.iter().filter(|l| !l.contains("\"GET\"")).collect();
    assert_eq!(
        writes.len(),
        2,
        "one script takes the lease, one settles it: {sent:#?}"
    );
    assert!(writes.iter().all(|l| l.contains("\"EVAL\"")), "{writes:#?}");
    // The settling script did store the answer and the quota.
    assert_eq!(
        engine.lookup("45.33.32.156".parse().expect("ip")).source,
        repute::engine::Source::Cache
    );
    assert!(engine.quota_state().is_some(), "quota recorded");
}
