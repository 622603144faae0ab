//! `audit export --since DATE` (NDJSON AuditEvents, the FHIR bulk format) and
//! `audit purge --before DATE` (retention), on either store (contract §6 "Operations").

use crate::rules::RuleSet;
use crate::store::{self, fhir, time_span, ConsultQuery, StoreSync, StoreUrl, Write};
use std::io::Write as _;

/// What `audit` does.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AuditAction {
    /// Writes every consult decided since DATE (a FHIR date or instant) to stdout as
    /// NDJSON AuditEvents, oldest first.
    Export {
        #[arg(long)]
        since: String,
        /// Consults decided before this date are exported; default: all since `--since`.
        #[arg(long)]
        until: Option<String>,
    },
    /// Deletes every consult decided before DATE (with its rules, cards, feedback and the
    /// access records of that time). Prints how many consults were deleted.
    Purge {
        #[arg(long)]
        before: String,
    },
}

/// Runs `audit`; returns the exit status (0 done, 2 bad arguments or store unreachable).
pub fn run(rules: &RuleSet, store_url: &str, action: AuditAction) -> i32 {
    let url = match StoreUrl::parse(store_url) {
        Ok(StoreUrl::None) => {
            eprintln!("error: audit needs a store (--store sqlite:PATH or postgres://...)");
            return 2;
        }
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 2;
        }
    };
    runtime.block_on(async move {
        let store = match store::open(&url, StoreSync::Normal).await {
            Ok(Some(s)) => s,
            Ok(None) => return 2,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        };
        match action {
            AuditAction::Export { since, until } => {
                let since = match time_span(&since) {
                    Ok((from, _)) => from,
                    Err(e) => {
                        eprintln!("error: --since: {e}");
                        return 2;
                    }
                };
                let until = match until.as_deref().map(time_span).transpose() {
                    Ok(u) => u.map(|(from, _)| from),
                    Err(e) => {
                        eprintln!("error: --until: {e}");
                        return 2;
                    }
                };
                let mut q = ConsultQuery {
                    since: Some(since),
                    until,
                    newest_first: false,
                    count: 1000,
                    ..Default::default()
                };
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::new(stdout.lock());
                let mut n = 0u64;
                loop {
                    let page = match store.search(&q).await {
                        Ok(p) => p,
                        Err(e) => {
                            eprintln!("error: {e}");
                            return 2;
                        }
                    };
                    for c in &page.consults {
                        let event = fhir::audit_event(c, &rules.site);
                        if writeln!(out, "{event}").is_err() {
                            return 2;
                        }
                        n += 1;
                    }
                    match page.next {
                        Some(next) => q.after = Some(next),
                        None => break,
                    }
                }
                let _ = out.flush();
                eprintln!("{n} AuditEvents exported from {}", store.describe());
                0
            }
            AuditAction::Purge { before } => {
                let before = match time_span(&before) {
                    Ok((from, _)) => from,
                    Err(e) => {
                        eprintln!("error: --before: {e}");
                        return 2;
                    }
                };
                match store.write(Write::Purge { before }).await {
                    Ok(w) => {
                        outln!(
                            "{} consults decided before {} purged from {}",
                            w.rows,
                            store::instant(before),
                            store.describe()
                        );
                        0
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        2
                    }
                }
            }
        }
    })
}
