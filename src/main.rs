//! The `referral-gateway` binary: parses the command line and hands over to a front end.

use clap::Parser;
use referral_gateway::cli::{audit, check, progress, rules_cmd, Cli, Command, OutputFormat};
use referral_gateway::engine::Engine;
use referral_gateway::http;
use std::process::ExitCode;

/// See Cargo.toml: the engine is allocation-bound, and mimalloc halves that cost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Serve { serve, rules } = &cli.command {
        // `serve` sets up its own logging (info level, text or JSON).
        return ExitCode::from(http::serve(&serve.config(), &rules.source()));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let code = match cli.command {
        Command::Check {
            files,
            format,
            validate,
            explain,
            store,
            limits,
            rules,
        } => match rules.load() {
            Ok(set) => {
                let display = progress::ProgressDisplay::on_stderr();
                let engine = Engine::new(set, rules.source(), limits.parse_limits(), 1)
                    .with_progress(display.callback());
                // With --store the engine records through the store sink, which needs the
                // async runtime entered for its commits (timeouts, PostgreSQL I/O).
                let (engine, runtime) = match store.as_deref() {
                    None => (engine, None),
                    Some(url) => match check::with_store(engine, url) {
                        Ok((engine, runtime)) => (engine, Some(runtime)),
                        Err(e) => {
                            eprintln!("error: --store: {e}");
                            return ExitCode::from(2);
                        }
                    },
                };
                let _entered = runtime.as_ref().map(tokio::runtime::Runtime::enter);
                let mode = if explain {
                    check::Mode::Explain
                } else if validate {
                    check::Mode::Validate
                } else {
                    check::Mode::Answer
                };
                let format = format.unwrap_or(if explain {
                    OutputFormat::Text
                } else {
                    OutputFormat::Json
                });
                check::run(
                    &engine,
                    &files,
                    format,
                    mode,
                    limits.max_body_bytes,
                    &display,
                )
            }
            Err(errors) => {
                for e in errors {
                    eprintln!("error: {e}");
                }
                2
            }
        },
        Command::Rules { action, rules } => rules_cmd::run(&rules, action),
        Command::Audit {
            action,
            store,
            rules,
        } => match rules.load() {
            Ok(set) => audit::run(&set, &store, action),
            Err(errors) => {
                for e in errors {
                    eprintln!("error: {e}");
                }
                2
            }
        },
        Command::Serve { .. } => 2,
    };
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}
