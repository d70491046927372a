//! The `repute` binary: parse the command line, pick the door, print errors in one line.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
