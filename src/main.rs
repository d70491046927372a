//! The `repute` binary: parse the command line, pick the command, print errors in one line.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
