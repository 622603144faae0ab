//! The `referral-gateway` binary: parses the command line and hands over to a front end.

use clap::Parser;
use referral_gateway::cli::{check, rules_cmd, Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check {
            files,
            format,
            validate,
            rules,
        } => match rules.load() {
            Ok(set) => check::run(&set, &files, format, validate),
            Err(errors) => {
                for e in errors {
                    eprintln!("error: {e}");
                }
                2
            }
        },
        Command::Rules { action, rules } => rules_cmd::run(&rules, action),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}
