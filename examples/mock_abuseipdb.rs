//! The test suite's mock AbuseIPDB as a process, for benchmarks and manual runs:
//!
//! ```text
//! cargo run --example mock_abuseipdb -- [--bind 127.0.0.1:0] [--quota N] [--delay-ms MS]
//! ```
//!
//! Prints the API base URL on the first line of stdout, serves until stdin is closed, then
//! prints the number of `check` calls per address as one JSON object on stderr. It only ever
//! listens on the address given (loopback by default).

#[allow(dead_code)]
#[path = "../tests/support/mock_abuseipdb.rs"]
mod mock_abuseipdb;

use std::io::{Read, Write};
use std::time::Duration;

use mock_abuseipdb::{Fault, MockAbuseIpdb};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut bind = "127.0.0.1:0".to_string();
    let mut quota = None;
    let mut delay = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next();
        let parsed = match (arg.as_str(), value) {
            ("--bind", Some(v)) => {
                bind = v.clone();
                true
            }
            ("--quota", Some(v)) => v.parse::<u64>().map(|n| quota = Some(n)).is_ok(),
            ("--delay-ms", Some(v)) => v.parse::<u64>().map(|n| delay = Some(n)).is_ok(),
            _ => false,
        };
        if !parsed {
            eprintln!(
                "mock_abuseipdb: bad argument `{arg}` (use --bind ADDR, --quota N, --delay-ms MS)"
            );
            return std::process::ExitCode::from(2);
        }
    }
    let mock = match MockAbuseIpdb::try_start_on(&bind) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("mock_abuseipdb: cannot listen on {bind}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(n) = quota {
        mock.set_daily_quota(n);
    }
    if let Some(ms) = delay {
        mock.always(Fault::Delay(Duration::from_millis(ms)));
    }
    println!("{}", mock.base_url());
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    let counts = mock.checks_per_ip();
    let pairs: Vec<String> = counts
        .iter()
        .map(|(ip, n)| format!("\"{ip}\":{n}"))
        .collect();
    eprintln!("{{{}}}", pairs.join(","));
    std::process::ExitCode::SUCCESS
}
