//! One [`Blocker`] shared by threads (as a long-running command shares it): it must be
//! `Send + Sync`, and two threads adding and removing addresses at once through it, with the
//! real `nft` inside a network namespace this test creates, must end with exactly the set
//! and the records they asked for.

mod block_support;
mod need;

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use block_support::Netns;
use repute::block::state::State;
use repute::block::{Blocker, Firewall, Request, SafetyPolicy};
use repute::config::BlockSettings;

fn assert_send_sync<T: Send + Sync + ?Sized>() {}

#[test]
fn blocker_and_firewall_are_send_and_sync() {
    assert_send_sync::<Blocker>();
    assert_send_sync::<dyn Firewall>();
    assert_send_sync::<Box<dyn Firewall>>();
    assert_send_sync::<State>();
    assert_send_sync::<repute::block::nft::Nftables>();
    assert_send_sync::<repute::block::ipset::Ipset>();
}

/// Moves the calling thread (only it: network namespaces are per thread) into the test's
/// namespace, so the `nft` it spawns works on the namespace's firewall, never the host's.
fn enter(netns: &Netns) {
    let file = std::fs::File::open(netns.ns_path()).expect("open the namespace");
    // SAFETY: setns(2) on a descriptor we own; it changes only this thread's namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// `count` public addresses (none of them documentation ranges, which are refused), distinct
/// for each `worker`; half IPv4, half IPv6.
fn addresses(worker: u8, count: u8) -> Vec<IpAddr> {
    (0..count)
        .map(|i| {
            let text = if i % 2 == 0 {
                format!("45.155.{worker}.{}", i + 1)
            } else {
                format!("2a06:4880:{worker}::{:x}", i + 1)
            };
            text.parse().expect("test address")
        })
        .collect()
}

#[test]
fn two_threads_adding_and_removing_through_one_blocker_lose_nothing() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let settings = BlockSettings {
        backend: "nftables".into(),
        ..BlockSettings::default()
    };
    let firewall = repute::block::open_backend(&settings).expect("nftables backend");
    let state = State::open(&netns.dir.path().join("store.sqlite")).expect("state");
    let blocker = Blocker::new(firewall, state, SafetyPolicy::default(), 1000);
    let request = |ip| Request {
        ip,
        duration: Duration::from_secs(3600),
        reason: Some("thread test".into()),
        force: false,
    };
    // Each thread adds its addresses, then removes every other one.
    let work = |worker: u8| {
        enter(&netns);
        let mine = addresses(worker, 12);
        for ip in &mine {
            blocker.add(&request(*ip)).expect("add");
        }
        for ip in mine.iter().step_by(2) {
            assert!(blocker.del(*ip).expect("del"), "{ip} was blocked");
        }
    };
    std::thread::scope(|s| {
        let a = s.spawn(|| work(1));
        let b = s.spawn(|| work(2));
        a.join().expect("thread 1");
        b.join().expect("thread 2");
    });
    let mut wanted: Vec<String> = [1, 2]
        .into_iter()
        .flat_map(|w| addresses(w, 12).into_iter().skip(1).step_by(2))
        .map(|ip| ip.to_string())
        .collect();
    wanted.sort();
    // What the kernel holds (read by `nft` itself), and what the blocker lists and recorded.
    assert_eq!(netns.nft_elements("repute"), wanted, "the kernel set");
    let listed = std::thread::scope(|s| {
        s.spawn(|| {
            enter(&netns);
            blocker.list().expect("list")
        })
        .join()
        .expect("list thread")
    });
    let mut seen: Vec<String> = listed.iter().map(|l| l.ip.to_string()).collect();
    seen.sort();
    assert_eq!(seen, wanted, "the listing");
    assert!(
        listed
            .iter()
            .all(|l| l.reason.as_deref() == Some("thread test") && !l.restored),
        "every entry recorded with its reason and none needed restoring: {listed:?}"
    );
}
