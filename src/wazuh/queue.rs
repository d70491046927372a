//! analysisd's queue socket: framing an event and sending it as one datagram.
//!
//! The message is `1:<location>:<json>` on the UNIX datagram socket `queue/sockets/queue`
//! (`docs/wazuh.md` §2). The location is `abuseipdb` for the manager and
//! `[id] (name) ip->abuseipdb` for an agent, so the enrichment alert is attributed to the agent
//! the attack hit (which matters for active response). Only the location is escaped (`|`→`||`,
//! `:`→`|:`); the payload is left as it is. analysisd keeps at most 65,535 bytes of a
//! datagram, so callers trim before framing (see [`MAX_MESSAGE`]).

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use super::alert::{Agent, LOCATION};

/// The largest datagram analysisd reads whole (`OS_MAXSTR - 1`).
pub const MAX_MESSAGE: usize = 65_535;

/// The socket path inside the Wazuh home.
pub const SOCKET: &str = "queue/sockets/queue";

/// How long one send may wait for analysisd to make room in its queue. A hung analysisd
/// would otherwise block the integration (and its deadline watchdog, which sends on the same
/// socket) forever.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an event could not be delivered.
#[derive(Debug, Error)]
pub enum QueueError {
    #[error("queue socket {0} not found (is this a Wazuh manager home?)")]
    Missing(PathBuf),
    #[error("queue socket {0} refused the event: wazuh-analysisd is not running")]
    NotRunning(PathBuf),
    /// Something else sits where analysisd's socket belongs (a file left by a copy, a
    /// directory made by mistake): restarting analysisd will not help until it is removed.
    #[error(
        "queue socket path {path} is {what}, not a socket (remove it and restart the Wazuh manager)"
    )]
    NotASocket { path: PathBuf, what: &'static str },
    #[error("queue socket {0} took no event for {secs}s: wazuh-analysisd is not reading", secs = SEND_TIMEOUT.as_secs())]
    Stalled(PathBuf),
    #[error("event of {0} bytes is too long for the queue socket")]
    TooLong(usize),
    #[error("queue socket {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Escapes a location the way analysisd unescapes it.
pub fn escape_location(location: &str) -> String {
    location.replace('|', "||").replace(':', "|:")
}

/// The (unescaped) location for an event about an alert from `agent`.
pub fn location_for(agent: Option<&Agent>) -> String {
    match agent {
        Some(a) if !a.is_manager() => format!(
            "[{}] ({}) {}->{LOCATION}",
            a.id,
            a.name,
            a.ip.as_deref().unwrap_or("any")
        ),
        _ => LOCATION.to_string(),
    }
}

/// The whole datagram: queue id, escaped location, payload.
pub fn frame(location: &str, payload: &str) -> String {
    format!("1:{}:{payload}", escape_location(location))
}

/// Sends one datagram to the socket at `path`.
pub fn send(path: &Path, message: &[u8]) -> Result<(), QueueError> {
    send_on(&connect(path)?, path, message)
}

/// Connects to the socket at `path`: a missing socket or a stopped analysisd shows here,
/// before any work is done for an event that could not be delivered.
pub fn connect(path: &Path) -> Result<UnixDatagram, QueueError> {
    connect_with_timeout(path, SEND_TIMEOUT)
}

/// [`connect`] with a chosen send timeout (tests use a short one).
pub fn connect_with_timeout(path: &Path, timeout: Duration) -> Result<UnixDatagram, QueueError> {
    let io_error = |source| QueueError::Io {
        path: path.into(),
        source,
    };
    let socket = UnixDatagram::unbound().map_err(io_error)?;
    socket.set_write_timeout(Some(timeout)).map_err(io_error)?;
    socket.connect(path).map_err(|e| classify(path, e, 0))?;
    Ok(socket)
}

/// Sends one datagram on a socket from [`connect`] (`path` names it in errors).
pub fn send_on(socket: &UnixDatagram, path: &Path, message: &[u8]) -> Result<(), QueueError> {
    if message.len() > MAX_MESSAGE {
        return Err(QueueError::TooLong(message.len()));
    }
    socket
        .send(message)
        .map(|_| ())
        .map_err(|e| classify(path, e, message.len()))
}

fn classify(path: &Path, err: io::Error, len: usize) -> QueueError {
    match err.kind() {
        io::ErrorKind::NotFound => QueueError::Missing(path.into()),
        io::ErrorKind::ConnectionRefused => match not_a_socket(path) {
            Some(what) => QueueError::NotASocket {
                path: path.into(),
                what,
            },
            None => QueueError::NotRunning(path.into()),
        },
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => QueueError::Stalled(path.into()),
        _ if err.raw_os_error() == Some(libc::EMSGSIZE) => QueueError::TooLong(len),
        _ => QueueError::Io {
            path: path.into(),
            source: err,
        },
    }
}

/// What sits at `path` when it is not a socket (`connect` says "refused" for all of them).
fn not_a_socket(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::metadata(path).ok()?.file_type();
    if kind.is_socket() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_file() {
        Some("a regular file")
    } else {
        Some("not a socket")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_or_directory_at_the_socket_path_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("queue");
        std::fs::write(&file, "").unwrap();
        let err = connect(&file).unwrap_err();
        assert!(
            matches!(
                err,
                QueueError::NotASocket {
                    what: "a regular file",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("is a regular file, not a socket"),
            "{err}"
        );
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let err = connect(&sub).unwrap_err();
        assert!(
            err.to_string().contains("is a directory, not a socket"),
            "{err}"
        );
        // A socket nobody reads is still "not running".
        let dead = dir.path().join("dead");
        drop(UnixDatagram::bind(&dead).unwrap());
        assert!(matches!(connect(&dead), Err(QueueError::NotRunning(_))));
    }

    fn agent(id: &str, ip: Option<&str>) -> Agent {
        Agent {
            id: id.into(),
            name: "web-01".into(),
            ip: ip.map(str::to_string),
        }
    }

    #[test]
    fn manager_and_missing_agent_use_the_plain_location() {
        assert_eq!(location_for(None), "abuseipdb");
        assert_eq!(location_for(Some(&agent("000", None))), "abuseipdb");
        assert_eq!(frame("abuseipdb", "{\"a\":1}"), "1:abuseipdb:{\"a\":1}");
    }

    #[test]
    fn agents_get_the_prefixed_location() {
        let loc = location_for(Some(&agent("001", Some("10.0.1.50"))));
        assert_eq!(loc, "[001] (web-01) 10.0.1.50->abuseipdb");
        assert_eq!(
            location_for(Some(&agent("002", None))),
            "[002] (web-01) any->abuseipdb"
        );
    }

    #[test]
    fn only_the_location_is_escaped() {
        let loc = location_for(Some(&agent("003", Some("2001:db8::1"))));
        let msg = frame(&loc, "{\"t\":\"a:b|c\"}");
        assert_eq!(
            msg,
            "1:[003] (web-01) 2001|:db8|:|:1->abuseipdb:{\"t\":\"a:b|c\"}"
        );
        assert_eq!(escape_location("a|b:c"), "a||b|:c");
    }

    #[test]
    fn delivery_errors_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue");
        assert!(matches!(
            send(&path, b"1:x:{}"),
            Err(QueueError::Missing(_))
        ));
        // A socket file whose reader is gone: analysisd stopped.
        drop(UnixDatagram::bind(&path).unwrap());
        assert!(matches!(
            send(&path, b"1:x:{}"),
            Err(QueueError::NotRunning(_))
        ));
        std::fs::remove_file(&path).unwrap();
        let reader = UnixDatagram::bind(&path).unwrap();
        send(&path, b"1:abuseipdb:{\"k\":1}").unwrap();
        let mut buf = [0u8; 64];
        let n = reader.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"1:abuseipdb:{\"k\":1}");
        let big = vec![b'x'; MAX_MESSAGE + 1];
        assert!(matches!(send(&path, &big), Err(QueueError::TooLong(_))));
    }

    #[test]
    fn a_reader_that_never_reads_stalls_the_send_instead_of_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue");
        let _reader = UnixDatagram::bind(&path).unwrap();
        let socket = connect_with_timeout(&path, Duration::from_millis(50)).unwrap();
        let message = vec![b'x'; 4096];
        // The reader's queue fills after a few hundred datagrams at most; bounded anyway.
        let failure = (0..100_000)
            .find_map(|_| send_on(&socket, &path, &message).err())
            .expect("the send eventually finds the queue full");
        assert!(matches!(failure, QueueError::Stalled(_)), "{failure}");
        assert!(failure.to_string().contains("not reading"), "{failure}");
    }
}
