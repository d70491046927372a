//! `repute config show` and `repute config reference`: the effective settings and the layer
//! that set each, and the reference of every setting, both from the loader's own table
//! ([`repute::config::reference`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use repute::config::{reference, show};

use super::Global;

const SHOW_HELP: &str = "\
Every setting a command reads (the Wazuh integration adds its <options> JSON and arguments), \
its effective value and the layer that set it: default, wazuh-home, file, environment, or \
with --wazuh-options the integration's options. The API key and a Redis password are shown only as set or unset; a user:pass@ in a URL as ***@.

Exit status: 0 shown, 2 the settings do not load (the one-line error every command would \
give).

Environment: REPUTE_CONFIG (default /etc/repute/repute.toml), WAZUH_HOME, and every variable \
of `repute config reference` (ABUSEIPDB_API_KEY_FILE, REPUTE_STORE, REPUTE_STATE_DIR, …).";

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Every setting's effective value and which layer set it.
    #[command(after_help = SHOW_HELP)]
    Show(ShowArgs),
    /// Print the reference of every setting (Markdown): file key, environment variable,
    /// options key, flags, default, meaning.
    #[command(after_help = "Exit status: 0 printed, 2 error.\n\nEnvironment: none read.")]
    Reference,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per setting, for people.
    Text,
    /// One JSON object per setting, one per line (`jsonl` is an alias).
    #[value(alias = "jsonl")]
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Show what the Wazuh integration uses with this `<options>` JSON file (as integratord
    /// writes it from ossec.conf): its values win, and its `min_score` is listed.
    #[arg(long, value_name = "FILE")]
    pub wazuh_options: Option<PathBuf>,
    /// The Wazuh home of --wazuh-options (default: WAZUH_HOME, else /var/ossec).
    #[arg(long, value_name = "DIR", requires = "wazuh_options")]
    pub wazuh_dir: Option<PathBuf>,
}

pub fn run(command: Command, global: &Global) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Reference => out.write_all(reference::markdown().as_bytes())?,
        Command::Show(args) => {
            let env = |name: &str| std::env::var(name).ok();
            let settings = match &args.wazuh_options {
                None => show::effective(global.config.as_deref(), env)?,
                Some(options) => {
                    let home = args
                        .wazuh_dir
                        .clone()
                        .or_else(|| {
                            env("WAZUH_HOME")
                                .filter(|h| !h.trim().is_empty())
                                .map(PathBuf::from)
                        })
                        .unwrap_or_else(|| PathBuf::from(repute::config::DEFAULT_WAZUH_HOME));
                    let env = repute::wazuh::options::Env::from_process();
                    show::effective_for_integration(&home, global.config.as_deref(), options, &env)?
                }
            };
            let file = repute::config::settings_file(global.config.as_deref(), &env);
            let text = match args.format {
                Format::Text => show::text(&settings, file.as_ref()),
                Format::Json => show::json_lines(&settings),
            };
            out.write_all(text.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::reference::SETTINGS;

    #[test]
    fn every_flag_of_the_settings_table_is_a_flag_of_its_command() {
        let cli = super::super::Cli::command();
        let mut checked = 0;
        for setting in SETTINGS {
            for (path, flag) in setting.flags {
                let mut command = &cli;
                for word in path.split(' ') {
                    command = command
                        .find_subcommand(word)
                        .unwrap_or_else(|| panic!("{}: no command `{path}`", setting.name()));
                }
                let long = flag.trim_start_matches("--");
                assert!(
                    command.get_arguments().any(|a| a.get_long() == Some(long)),
                    "{}: `repute {path}` has no {flag}",
                    setting.name()
                );
                checked += 1;
            }
        }
        assert!(checked > 10, "{checked}");
    }
}
