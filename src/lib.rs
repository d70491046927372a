//! # repute
//!
//! repute tells defenders which login attempts come from known-bad addresses, and acts on it.
//! This library is the engine behind every command of the `repute` binary; the binary itself
//! (`src/main.rs`, `src/cli/`) only parses arguments and calls in here.
//!
//! One pipeline serves every command: **sources** (files, `.gz`, stdin, the journal, followed
//! files, a Wazuh alert or active-response message) → the **sshd parser** and its
//! **per-connection** count → an [`Attempt`] → the **engine**'s lookup (class gate,
//! allowlist, the shared store, AbuseIPDB behind one breaker) → the **decision**
//! ([`policy::decide`]: alert, block for how long, report with which categories, or nothing,
//! with why) → **sinks** (a Wazuh event on the queue socket, the firewall through
//! [`block`], a report to AbuseIPDB, JSON lines, metrics). Settings come from one loader
//! ([`config`]); state lives in one store per host or one Redis per fleet, behind traits
//! ([`store`]). `repute scan` and `repute check` stop after the lookup (they show, they do
//! not act); the integration, the active response and `repute watch` run it to the end.
//!
//! The modules, left to right:
//!
//! - [`attempt`] defines the [`Attempt`] every reader produces and everything downstream
//!   consumes (with its `Kind`, `Outcome` and `Origin`), so nothing downstream re-parses text.
//! - [`sshd`] turns one log line (any syslog envelope, sshd or sshd-session), or a message
//!   without its envelope (journald's `MESSAGE`, a Wazuh alert's `full_log`), into an
//!   [`Attempt`]: who (address, port, user), what (`kind`, `outcome`) and the Wazuh rule the
//!   same line would fire. The address is taken where sshd's (or PAM's) format string puts
//!   it, with the format's length limits and the 500-byte syslog cut in mind, so text an
//!   attacker typed (a user name, a key id, an identification string) never becomes the
//!   source; a line that could be read two ways gives no address. `sshd::connection` then
//!   counts attempts per connection (one try, however many lines describe it).
//! - [`addr`] classifies an address against the IANA special-purpose registries and parses
//!   addresses as people and logs write them ([`addr::parse`]). [`addr::public`] is the one
//!   gate: only addresses it lets through are ever looked up, blocked or reported.
//! - [`scan`] reads files, `.gz` files, stdin or this machine's own sshd logs (the journal
//!   through `journalctl`, else `/var/log/auth.log*`, `/var/log/secure*`) in a streaming way
//!   and either writes attempts out as JSON lines or summarises them per address (the
//!   `repute scan` command); `scan::enrich` adds reputation through the [`engine`].
//! - [`reputation`] knows AbuseIPDB: the [`reputation::Reputation`] it returns, the provider
//!   trait, and the HTTP client, which also reports the quota AbuseIPDB announces. [`cache`]
//!   keeps answers in the shared store, with a typed lookup lease (taken, held by another,
//!   failed with a note) so a storm costs one lookup per address; [`quota`] keeps the quota
//!   state every process must honour. A lookup settles answer, lease and quota in one
//!   durable commit.
//! - [`engine`] only looks addresses up: class gate, allowlist, cache, provider (behind the
//!   one circuit breaker every caller shares, `repute watch` included: open after repeated
//!   failures, one try again a minute later); its `Lookup` carries a
//!   `Result<Reputation, NoReputation>`. [`config`] is the one settings loader every command and the integration
//!   use (defaults, Wazuh-home defaults, `/etc/repute/repute.toml`, environment, then the
//!   integration's options JSON and each command's flags), picks the one store every process
//!   on the host shares, and keeps the API key out of every output; `config::reference` is its
//!   one table of every setting (file key, variable, options key, flags, default), from which
//!   the known keys, the environment layer, `repute config show` and the README's reference
//!   come; [`duration`] is its one duration parser (`1h30m`).
//! - [`wazuh`] speaks Wazuh: the alert model (each alert an [`Attempt`]), the integration's command line, settings and
//!   enrichment event, queue socket framing, the shipped ruleset, installation into a Wazuh
//!   tree (with a dry-run diff) and back out, and the active-response protocol.
//! - [`store`] is where shared state lives, behind backend-neutral traits (answers
//!   [`cache::ReputationCache`], [`quota::QuotaStore`], [`decisions::Decisions`]) and one
//!   error: `SqliteStore` on the one SQLite file every process on the host shares (which
//!   block state shares too), `NoStore` when caching is off; [`fleet`] is the other backend:
//!   one Redis (or Redis Cluster) shared by several hosts (`RedisStore` for the same traits),
//!   so Wazuh managers spend one quota.
//! - [`decisions`] keeps ban decisions (address, until, why, which host) in either store, with
//!   a change log a long-running command follows, so a ban decided on one host is enforced by
//!   every host.
//! - [`block`] blocks addresses in the kernel firewall (nftables, ipset fallback) with expiry,
//!   safety checks and state kept beside the cache, and takes all of it back out (teardown).
//! - [`report`] reports attackers back to AbuseIPDB: categories, comments built from evidence
//!   counts (nothing of ours leaves), the 15-minute rule and the report quota kept in the
//!   store, one audit line per report or refusal.
//! - [`source`] reads continuously: files followed across rotations and truncations, the
//!   journal through `journalctl`, with positions saved in the store.
//! - [`policy`] decides. [`policy::decision`] is the one decision step every command calls:
//!   an [`Attempt`] (a Wazuh alert becomes one through `wazuh::alert::Alert::attempt`), its
//!   address's history and its reputation (or why there is none) in; alert, block for how
//!   long, report with which categories, or ignore, each with its reason, out, by the
//!   thresholds of [`config`] (the integration's `min_score`, `block.min_score`, the active
//!   response's `--on-lookup-failure`, `block.default_duration`, `repute watch`'s `ban_score`
//!   and growing ban time). For `repute watch`, `policy::Policy` keeps the recent history
//!   the decision takes (tries within a window, probes weighed less, the score looked up at
//!   the first failure, growing ban times, IPv6 per /64, bounded memory) and asks `decide`
//!   whether an attack bans. [`policy::history`] keeps what each source did, bounded: IPv6
//!   grouped per prefix (a /64 by default), at most a set number of sources, the least active
//!   dropped past that; `scan`'s per-source table is built on it.
//! - [`printable`] makes outside text (user names, the provider's ISP) safe for a terminal.
//! - [`watch`] is the daemon of `repute watch`: sources → parser → policy (its count, then
//!   `decide`) → firewall, with metrics and the status `repute status` shows; with a Redis
//!   store it shares its bans and enforces the fleet's ([`decisions`]), and with `[report]` it
//!   reports new bans with the categories `decide` gives them.

pub mod addr;
pub mod attempt;
pub mod block;
pub mod cache;
pub mod config;
pub mod decisions;
pub mod duration;
pub mod engine;
pub mod fleet;
pub mod policy;
pub mod printable;
pub mod quota;
pub mod report;
pub mod reputation;
pub mod scan;
pub mod source;
pub mod sshd;
pub mod store;
pub mod watch;
pub mod wazuh;

pub use attempt::{Attempt, Kind, Origin, Outcome};
