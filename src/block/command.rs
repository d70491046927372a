//! Running the firewall tools: argument vectors only (never a shell), stdin when asked, and
//! errors that carry the tool's own first line of complaint.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::BlockError;

/// What a tool printed, once it exited successfully.
pub struct Ran {
    pub stdout: String,
}

/// Runs `program args…`, feeding `stdin` when given. A non-zero exit becomes
/// [`BlockError::Tool`] with `action` and the first line of stderr.
pub fn run<S: AsRef<OsStr>>(
    program: &str,
    args: &[S],
    stdin: Option<&[u8]>,
    action: &str,
) -> Result<Ran, BlockError> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawn_err = |source| BlockError::Spawn {
        program: program.to_string(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // The pipe is closed when `pipe` drops, which tells the tool the input is complete.
        pipe.write_all(input).map_err(spawn_err)?;
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if !out.status.success() {
        return Err(BlockError::Tool {
            program: program.to_string(),
            action: action.to_string(),
            detail: first_line(&String::from_utf8_lossy(&out.stderr), out.status),
        });
    }
    let stdout = String::from_utf8(out.stdout).map_err(|e| BlockError::Output {
        program: program.to_string(),
        detail: e.to_string(),
    })?;
    Ok(Ran { stdout })
}

/// The most useful line of a tool's complaint (nft starts with "Error: …").
fn first_line(stderr: &str, status: std::process::ExitStatus) -> String {
    stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("exit status {status}"))
}

/// Whether `program` is an executable file in one of the `PATH` directories.
pub fn in_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_carries_first_stderr_line() {
        let err = run(
            "sh",
            &["-c", "echo; echo 'Error: boom' >&2; exit 3"],
            None,
            "testing",
        );
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(msg, "sh failed while testing: Error: boom");
    }

    #[test]
    fn stdin_is_fed_and_stdout_returned() {
        let ran = run("cat", &[] as &[&str], Some(b"hello"), "echo").map(|r| r.stdout);
        assert_eq!(ran.ok().as_deref(), Some("hello"));
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = run("repute-no-such-tool", &["x"], None, "x");
        assert!(matches!(err, Err(BlockError::Spawn { .. })));
        assert!(!in_path("repute-no-such-tool"));
        assert!(in_path("sh"));
    }
}
