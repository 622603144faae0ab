//! The command line front end (contract §5): `check`, `rules`, `serve`.

/// `print!` for a command's report. `print!` panics when the reader has stopped reading
/// (`rules lint | head`); these end the output quietly instead, and the command still finishes
/// and sets its exit status, as `check` does.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::written(std::io::Write::write_fmt(
            &mut std::io::stdout().lock(),
            format_args!($($arg)*),
        ))
    };
}

/// `println!` for a command's report (see [`out!`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::out!("{}\n", format_args!($($arg)*))
    };
}
pub(crate) use out;

/// Reports a failed write of a command's report, unless the reader had stopped reading.
pub(crate) fn written(result: std::io::Result<()>) {
    if let Err(e) = result {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the report: {e}");
        }
    }
}

pub mod audit;
pub mod check;
pub mod progress;
pub mod report;
pub mod rules_cmd;

use crate::http;
use crate::load::RuleSource;
use crate::parse::Limits;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// referral-gateway: checks GP imaging referrals (FHIR R4 ServiceRequests) against the
/// hospital's referral guidance.
#[derive(Debug, Parser)]
#[command(name = "referral-gateway", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where the rules and profiles come from.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RulesArg {
    /// Folder of rules, terminology and site data (default: the rules shipped in the repository).
    #[arg(long, env = "REFERRAL_GATEWAY_RULES", global = true)]
    pub rules: Option<PathBuf>,
    /// Folder of FHIR conformance resources: StructureDefinitions, ValueSets, CodeSystems,
    /// ConceptMaps (default: the `profiles/` folder beside the rules folder, else the profiles
    /// shipped in the repository).
    #[arg(long, env = "REFERRAL_GATEWAY_PROFILES", global = true)]
    pub profiles: Option<PathBuf>,
}

impl RulesArg {
    /// Where the rules come from, as the lower layers take it.
    pub fn source(&self) -> RuleSource {
        RuleSource {
            rules: self.rules.clone(),
            profiles: self.profiles.clone(),
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.source().dir()
    }

    /// Loads the chosen rules: `--rules DIR`, else the repository's rules/ folder when it is
    /// on this machine (so that edits and reloads need no rebuild), else the copy built into
    /// the binary; with `--profiles DIR` or the profiles that go with them.
    pub fn load(&self) -> Result<crate::rules::RuleSet, Vec<crate::load::LoadError>> {
        crate::rules::RuleSet::from_source(&self.source())
    }
}

impl std::fmt::Display for RulesArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source().fmt(f)
    }
}

/// Options of `serve`; every flag has an environment variable of the same meaning.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on (`ADDR:PORT`; port 0 picks a free port, printed at start).
    #[arg(
        long,
        env = "REFERRAL_GATEWAY_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: String,
    /// Log lines as plain text or as JSON objects (on stderr).
    #[arg(long, value_enum, env = "REFERRAL_GATEWAY_LOG_FORMAT", default_value_t = LogFormatArg::Text)]
    pub log_format: LogFormatArg,
    /// Largest request body accepted, in bytes (413 above).
    #[arg(long, env = "REFERRAL_GATEWAY_MAX_BODY_BYTES", default_value_t = http::Config::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Most entries accepted in one Bundle (413 above).
    #[arg(long, env = "REFERRAL_GATEWAY_MAX_BUNDLE_ENTRIES", default_value_t = http::Config::default().max_bundle_entries)]
    pub max_bundle_entries: usize,
    /// Deepest nesting of JSON objects and arrays accepted (413 above).
    #[arg(long, env = "REFERRAL_GATEWAY_MAX_DEPTH", default_value_t = http::Config::default().max_depth)]
    pub max_depth: usize,
    /// Time allowed for one request, body upload included (503 after it).
    #[arg(
        long,
        env = "REFERRAL_GATEWAY_REQUEST_TIMEOUT_SECS",
        default_value_t = http::Config::default().request_timeout_secs
    )]
    pub request_timeout_secs: u64,
    /// Time allowed to send a request's head (request line and headers); the connection is
    /// closed after it.
    #[arg(
        long,
        env = "REFERRAL_GATEWAY_HEADER_TIMEOUT_SECS",
        default_value_t = http::Config::default().header_timeout_secs
    )]
    pub header_timeout_secs: u64,
    /// Time allowed to receive the request body, from the end of the headers (408 after it).
    /// Keep it under the request timeout: a stalled upload is the client's fault (4xx), not the
    /// gateway's (503).
    #[arg(long, env = "REFERRAL_GATEWAY_BODY_TIMEOUT_SECS", default_value_t = http::Config::default().body_timeout_secs)]
    pub body_timeout_secs: u64,
    /// Most decisions computed at once; more requests wait (within the timeout). 0: four per
    /// core.
    #[arg(
        long,
        env = "REFERRAL_GATEWAY_MAX_CONCURRENT_CHECKS",
        default_value_t = http::Config::default().max_concurrent_checks
    )]
    pub max_concurrent_checks: usize,
    /// The upstream FHIR server, its deadline, breaker and credentials (contract §7).
    /// (Boxed: the subcommand enum stays small.)
    #[command(flatten)]
    pub upstream: Box<UpstreamFlags>,
    /// Authentication, TLS, rate limits (contract §8; `crate::auth`). Boxed: the command enum
    /// would otherwise be mostly the size of these options.
    #[command(flatten)]
    pub auth: Box<AuthFlags>,
    /// Where consults are recorded (contract §6): `sqlite:PATH` (created on first start),
    /// `postgres://USER@HOST/DB` (several replicas on one database) or `none` (nothing
    /// recorded; development only).
    #[arg(long, env = "REFERRAL_GATEWAY_STORE", default_value = crate::store::DEFAULT_STORE)]
    pub store: String,
    /// `full`: commits survive power loss too (SQLite `synchronous=FULL`); the default
    /// survives a crash of the process.
    #[arg(long, value_enum, env = "REFERRAL_GATEWAY_STORE_SYNC", default_value_t = StoreSyncArg::Normal)]
    pub store_sync: StoreSyncArg,
    /// `hash`: keep only the SHA-256 of each request in the consult record, not the request.
    #[arg(long, value_enum, env = "REFERRAL_GATEWAY_AUDIT_BODY", default_value_t = AuditBodyArg::Full)]
    pub audit_body: AuditBodyArg,
}

/// `--store-sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreSyncArg {
    /// Durable against a crash of the process (SIGKILL).
    Normal,
    /// Durable against power loss too.
    Full,
}

/// `--audit-body`: what the consult record keeps of each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditBodyArg {
    /// The ServiceRequest as received, and its SHA-256.
    Full,
    /// Only its SHA-256.
    Hash,
}

/// The security options of `serve`; every flag has an environment variable of the same meaning.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AuthFlags {
    /// OpenID Connect issuer of the bearer tokens of the FHIR routes: its discovery document
    /// (`{issuer}/.well-known/openid-configuration`) gives the JWKS; tokens must carry this
    /// `iss`. Turns authentication of the FHIR routes on.
    #[arg(long, env = "REFERRAL_GATEWAY_AUTH_ISSUER")]
    pub auth_issuer: Option<String>,
    /// The issuer's keys as a JWKS URL or file, instead of discovery (`--auth-issuer` still
    /// names the `iss` that tokens must carry).
    #[arg(long, env = "REFERRAL_GATEWAY_AUTH_JWKS")]
    pub auth_jwks: Option<String>,
    /// The `aud` that bearer tokens must carry (default: the public base URL).
    #[arg(long, env = "REFERRAL_GATEWAY_AUTH_AUDIENCE")]
    pub auth_audience: Option<String>,
    /// Trusted CDS Hooks clients: a JSON file whose keys are the trusted `iss` values and whose
    /// values are a JWKS URL, an inline JWKS `{"keys": [...]}`, or `{"jwks": ..., "fhirServers":
    /// [...]}`. Turns the CDS Hooks JWT check on.
    #[arg(long, env = "REFERRAL_GATEWAY_CDS_TRUSTED_ISSUERS")]
    pub cds_trusted_issuers: Option<std::path::PathBuf>,
    /// The gateway's URL as its callers see it (behind a TLS-terminating proxy, say): what `aud`
    /// and the CDS Hooks service URLs are compared with, and the base onto which an upstream's
    /// `Location` and links are rewritten (default: from the request's `Host` header).
    /// `--public-base` is the same flag (its first name, from the upstream work).
    #[arg(long, alias = "public-base", env = "REFERRAL_GATEWAY_PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,
    /// Proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed (CIDR ranges,
    /// comma-separated or repeated).
    #[arg(long, env = "REFERRAL_GATEWAY_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Requests a second each client may make (bursts of twice as many); 429 above it. Off
    /// unless given.
    #[arg(long, env = "REFERRAL_GATEWAY_RATE_LIMIT_PER_CLIENT")]
    pub rate_limit_per_client: Option<std::num::NonZeroU32>,
    /// A different limit for one client: `CLIENT=N` (the client as in the logs and metrics:
    /// the token's `client_id`, else its `sub`), repeatable.
    #[arg(
        long,
        env = "REFERRAL_GATEWAY_RATE_LIMIT_CLIENT",
        value_delimiter = ','
    )]
    pub rate_limit_client: Vec<String>,
    /// Server certificate chain (PEM): serve HTTPS. Reloaded on SIGHUP.
    #[arg(long, env = "REFERRAL_GATEWAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// Private key of the server certificate (PEM). Reloaded on SIGHUP.
    #[arg(long, env = "REFERRAL_GATEWAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to: mutual TLS. An extra
    /// requirement on the connection; it never replaces the token.
    #[arg(long, env = "REFERRAL_GATEWAY_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<std::path::PathBuf>,
    /// Serve on a non-loopback address without authentication (development only: a warning at
    /// start-up and in /health).
    #[arg(long, env = "REFERRAL_GATEWAY_INSECURE")]
    pub insecure: bool,
    /// Also serve `GET /metrics`, and only that, on this address (`ADDR:PORT`), without a
    /// token: for a Prometheus scraper on a private network. `/metrics` on the main port keeps
    /// needing a bearer token when authentication is on.
    #[arg(long, env = "REFERRAL_GATEWAY_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// The OpenID Connect client (registered at `--auth-issuer` as a public client with the
    /// redirect URI `{public base URL}/console/callback`) that users sign in to `/console` as:
    /// authorization code + PKCE; the session is an HttpOnly, Secure cookie.
    #[arg(long, env = "REFERRAL_GATEWAY_CONSOLE_CLIENT_ID")]
    pub console_client_id: Option<String>,
}

impl AuthFlags {
    /// The security options as the server takes them.
    pub fn args(&self) -> crate::auth::AuthArgs {
        crate::auth::AuthArgs {
            auth_issuer: self.auth_issuer.clone(),
            auth_jwks: self.auth_jwks.clone(),
            auth_audience: self.auth_audience.clone(),
            cds_trusted_issuers: self.cds_trusted_issuers.clone(),
            public_base_url: self.public_base_url.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
            rate_limit_per_client: self.rate_limit_per_client,
            rate_limit_client: self.rate_limit_client.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            tls_client_ca: self.tls_client_ca.clone(),
            insecure: self.insecure,
            metrics_listen: self.metrics_listen.clone(),
            console_client_id: self.console_client_id.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

impl ServeArgs {
    /// The server's configuration: `serve` takes its flags, the server plain values.
    pub fn config(&self) -> http::Config {
        http::Config {
            listen: self.listen.clone(),
            log_format: match self.log_format {
                LogFormatArg::Text => http::LogFormat::Text,
                LogFormatArg::Json => http::LogFormat::Json,
            },
            max_body_bytes: self.max_body_bytes,
            max_bundle_entries: self.max_bundle_entries,
            max_depth: self.max_depth,
            request_timeout_secs: self.request_timeout_secs,
            header_timeout_secs: self.header_timeout_secs,
            body_timeout_secs: self.body_timeout_secs,
            max_concurrent_checks: self.max_concurrent_checks,
            upstream: self.upstream.config(self.auth.public_base_url.as_ref()),
            auth: self.auth.args(),
            store: self.store.clone(),
            store_sync: match self.store_sync {
                StoreSyncArg::Normal => crate::store::StoreSync::Normal,
                StoreSyncArg::Full => crate::store::StoreSync::Full,
            },
            keep_request_body: self.audit_body == AuditBodyArg::Full,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// FHIR JSON: the same answer the HTTP gateway gives.
    Json,
    /// A short report for people: decision, findings, advice.
    Text,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check FHIR files (or `-` for stdin) offline. Exit status: 0 accepted, 1 rejected,
    /// 2 unusable input, 3 redirected; for several requests the worst in the order 2, 1, 3, 0.
    Check {
        /// FHIR JSON or XML files; `-` reads stdin (format sniffed from the first byte).
        #[arg(required = true)]
        files: Vec<String>,
        /// Output format (default: json; text with `--explain`).
        #[arg(long, value_enum)]
        format: Option<OutputFormat>,
        /// Print the OperationOutcome with every decision and finding (as `$validate` answers)
        /// instead of the answer a POST gets.
        #[arg(long)]
        validate: bool,
        /// Explain each decision: codes and words matched, context looked up, each rule tried
        /// with its conditions. As text, or with `--format json` as the FHIR Parameters of
        /// `POST /ServiceRequest/$explain`.
        #[arg(long, conflicts_with = "validate")]
        explain: bool,
        /// Record each decision as a consult in this store (`sqlite:PATH` or
        /// `postgres://...`), as `serve` does; by default `check` records nothing. The answer
        /// then carries the consult ids. Explanations are never recorded.
        #[arg(long, conflicts_with_all = ["validate", "explain"])]
        store: Option<String>,
        #[command(flatten)]
        limits: CheckLimits,
        #[command(flatten)]
        rules: RulesArg,
    },
    /// List, lint and test the rules.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
        #[command(flatten)]
        rules: RulesArg,
    },
    /// Export or purge the consult record (contract §6).
    Audit {
        #[command(subcommand)]
        action: audit::AuditAction,
        /// The consult store: `sqlite:PATH` or `postgres://...`.
        #[arg(long, env = "REFERRAL_GATEWAY_STORE", default_value = crate::store::DEFAULT_STORE, global = true)]
        store: String,
        #[command(flatten)]
        rules: RulesArg,
    },
    /// Run the FHIR HTTP gateway (contract §4) until SIGTERM or Ctrl-C; SIGHUP reloads the rules.
    Serve {
        #[command(flatten)]
        serve: ServeArgs,
        #[command(flatten)]
        rules: RulesArg,
    },
}

/// The limits of `check`: the names of `serve`'s, but unlimited unless given. A file on disk
/// is the caller's own (a test harness's 10,000-entry batch, a day's export); the HTTP limits
/// protect a shared server from its callers, and `serve` keeps them.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckLimits {
    /// Largest file accepted, in bytes (the answer for a larger one is `too-costly`, exit 2).
    #[arg(long)]
    pub max_body_bytes: Option<u64>,
    /// Most entries accepted in one Bundle.
    #[arg(long)]
    pub max_bundle_entries: Option<usize>,
    /// Deepest nesting of JSON objects and arrays accepted (this one has a default: it bounds
    /// the parser's recursion, not the work).
    #[arg(long, default_value_t = Limits::default().max_depth)]
    pub max_depth: usize,
}

impl CheckLimits {
    pub fn parse_limits(&self) -> Limits {
        Limits {
            max_bundle_entries: self.max_bundle_entries.unwrap_or(usize::MAX),
            max_depth: self.max_depth,
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum RulesAction {
    /// Id, action and title of every rule.
    List,
    /// Check every rule, terminology and site file; errors name the file and line.
    Lint,
    /// Run every rule's own examples and compare the decisions.
    Test,
    /// Run a clinical corpus (TOML cases with the decision the guidance expects) and print the
    /// agreement, the per-rule precision / recall table and every disagreement (Markdown).
    /// Exit status 1 when any case disagrees.
    Report {
        /// A folder of corpus files, or one file.
        #[arg(long, default_value = "tests/corpus")]
        corpus: PathBuf,
    },
    /// Print the FHIR request (JSON) a corpus case is sent as, to read its decision with
    /// `check --explain -`. Several ids print one request per line.
    Case {
        /// A folder of corpus files, or one file.
        #[arg(long, default_value = "tests/corpus")]
        corpus: PathBuf,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Write the conformance resources generated from the rules (FHIR JSON) into a folder: the
    /// CodeSystems of decisions, rules and pathways, and the terminology's CodeSystems,
    /// ValueSets and ConceptMaps.
    #[command(alias = "codesystems")]
    Publish {
        #[arg(long, default_value = "profiles")]
        out: PathBuf,
    },
    /// Print the reference of the conditions a rule's `[when]` may give, generated from the
    /// gateway's own conditions; with `--readme`, rewrite its generated section in that file
    /// (the rules README).
    Conditions {
        #[arg(long)]
        readme: Option<PathBuf>,
    },
}

/// Options of `serve` for the upstream; every flag has an environment variable too.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UpstreamFlags {
    /// Base URL of the FHIR R4 server accepted orders are forwarded to (contract §7). Without
    /// it the gateway only decides (§4).
    #[arg(long, env = "REFERRAL_GATEWAY_UPSTREAM")]
    pub upstream: Option<String>,
    /// The whole upstream deadline of one request, retries included (504 after it). Must be
    /// shorter than the request timeout.
    #[arg(
        long,
        env = "REFERRAL_GATEWAY_UPSTREAM_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub upstream_timeout_secs: u64,
    /// How long the circuit breaker stays open (answering 503 at once) before it lets one
    /// request probe the upstream again.
    #[arg(
        long,
        env = "REFERRAL_GATEWAY_UPSTREAM_BREAKER_SECS",
        default_value_t = 30
    )]
    pub upstream_breaker_secs: u64,
    /// A static bearer token for the upstream.
    #[arg(long, env = "REFERRAL_GATEWAY_UPSTREAM_TOKEN", hide_env_values = true)]
    pub upstream_token: Option<String>,
    /// SMART Backend Services: the client id registered with the upstream's authorisation
    /// server.
    #[arg(long, env = "REFERRAL_GATEWAY_UPSTREAM_CLIENT_ID")]
    pub upstream_client_id: Option<String>,
    /// SMART Backend Services: the private key of the client assertion, a PEM or a JWK file
    /// (a JWK, or a JWK Set of one private key; its `kid` is the default key id): RSA signs
    /// RS384, EC P-384 signs ES384.
    #[arg(long, env = "REFERRAL_GATEWAY_UPSTREAM_KEY")]
    pub upstream_key: Option<std::path::PathBuf>,
    /// SMART Backend Services: the `kid` of the key, as registered in the client's JWKS
    /// (default: the JWK's own `kid`, when the key is a JWK).
    #[arg(long, env = "REFERRAL_GATEWAY_UPSTREAM_KEY_ID")]
    pub upstream_key_id: Option<String>,
    /// SMART Backend Services: the token endpoint.
    #[arg(long, env = "REFERRAL_GATEWAY_UPSTREAM_TOKEN_URL")]
    pub upstream_token_url: Option<String>,
    /// SMART Backend Services: the scopes asked for.
    #[arg(
        long,
        env = "REFERRAL_GATEWAY_UPSTREAM_SCOPE",
        default_value = "system/ServiceRequest.* system/*.read"
    )]
    pub upstream_scope: String,
}

impl UpstreamFlags {
    /// The plain configuration the server takes; `public_base` is `--public-base-url`, one
    /// flag for every part of the gateway that needs its public address.
    pub fn config(&self, public_base: Option<&String>) -> crate::http::upstream::UpstreamArgs {
        crate::http::upstream::UpstreamArgs {
            upstream: self.upstream.clone(),
            upstream_timeout_secs: self.upstream_timeout_secs,
            upstream_breaker_secs: self.upstream_breaker_secs,
            public_base: public_base.cloned(),
            upstream_token: self.upstream_token.clone(),
            upstream_client_id: self.upstream_client_id.clone(),
            upstream_key: self.upstream_key.clone(),
            upstream_key_id: self.upstream_key_id.clone(),
            upstream_token_url: self.upstream_token_url.clone(),
            upstream_scope: self.upstream_scope.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One flag names the gateway's public address for security (`aud`, CDS Hooks URLs) and
    /// for the upstream's rewritten links; its first name still works.
    #[test]
    fn one_public_base_flag_for_auth_and_upstream() {
        for flag in ["--public-base-url", "--public-base"] {
            let cli = Cli::try_parse_from([
                "referral-gateway",
                "serve",
                flag,
                "https://gateway.example.org/fhir",
            ])
            .expect("parses");
            let Command::Serve { serve, .. } = cli.command else {
                panic!("not serve");
            };
            let config = serve.config();
            let want = Some("https://gateway.example.org/fhir".to_string());
            assert_eq!(config.upstream.public_base, want, "{flag}");
            assert_eq!(config.auth.public_base_url, want, "{flag}");
        }
    }
}
