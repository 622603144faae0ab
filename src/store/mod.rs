//! The consult record (contract §6): every decided ServiceRequest is a *consult*, committed to
//! a store before its answer is sent, and read back as FHIR `AuditEvent`s.
//!
//! One [`ConsultStore`] trait, two stores: SQLite (embedded, the default) and PostgreSQL
//! (several replicas share one database). Both speak the same SQL ([`sql`]): the schema,
//! queries and statistics are written once, over a small [`sql::Db`] trait each store
//! implements; what differs is how a connection is held and how writes are grouped.
//!
//! Writes are *group-committed*: every write (the consults of one request, a CDS feedback, an
//! access record) is queued to one writer, which commits everything queued in one transaction
//! and only then wakes each waiting request. No answer leaves before its commit; under load
//! many requests share one commit.
//!
//! - [`model`]: what a consult is, as stored;
//! - [`sql`]: the schema (versioned migrations, run at start-up) and every statement;
//! - [`sqlite`], [`postgres`]: the two stores;
//! - [`record`]: the engine's decisions turned into consults, and consult ids onto answers;
//! - [`sink`]: the store as the engine service's first decision sink;
//! - [`fhir`]: consults as `AuditEvent`, redirects as `Provenance`, statistics as `Parameters`.

pub mod fhir;
pub mod model;
pub mod postgres;
pub mod record;
pub mod sink;
pub mod sql;
pub mod sqlite;

pub use model::{
    AccessRecord, CardLink, Consult, ConsultQuery, FeedbackRecord, Page, RuleSetRecord, Stats,
    TimeCount, Write, Written,
};

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// Why the store could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or cannot commit now (full disk, locked or corrupt file,
    /// database gone): the request is answered 503 and may be retried.
    #[error("the consult store is unavailable: {0}")]
    Unavailable(String),
    /// The store URL or its options are wrong: the gateway does not start.
    #[error("bad store URL: {0}")]
    BadUrl(String),
    /// Data in the store the gateway cannot read (a bug or a hand-edited row).
    #[error("unreadable data in the consult store: {0}")]
    Corrupt(String),
}

/// How durable a commit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreSync {
    /// Durable against a crash of the process (SIGKILL): SQLite WAL with `synchronous=NORMAL`.
    #[default]
    Normal,
    /// Durable against power loss too: SQLite `synchronous=FULL` (PostgreSQL: as its server is
    /// configured).
    Full,
}

/// What `--store` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `none`: nothing recorded (development only).
    None,
    /// `sqlite:PATH[?max_pages=N]`; `max_pages` caps the file (a full disk, for tests and
    /// small devices).
    Sqlite {
        path: std::path::PathBuf,
        max_pages: Option<u64>,
    },
    /// `postgres://...` or `postgresql://...`, as libpq reads it.
    Postgres(String),
}

/// The default store: a SQLite file under `data/`, created on first start.
pub const DEFAULT_STORE: &str = "sqlite:data/referral-gateway.sqlite";

impl StoreUrl {
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let url = url.trim();
        if url == "none" {
            return Ok(StoreUrl::None);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_string()));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (path, query) = match rest.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err(StoreError::BadUrl(
                    "sqlite: needs a file path, e.g. sqlite:data/referral-gateway.sqlite".into(),
                ));
            }
            let mut max_pages = None;
            for pair in query.into_iter().flat_map(|q| q.split('&')) {
                match pair.split_once('=') {
                    Some(("max_pages", n)) => {
                        max_pages = Some(n.parse().map_err(|_| {
                            StoreError::BadUrl(format!("max_pages must be a number, not '{n}'"))
                        })?)
                    }
                    _ => {
                        return Err(StoreError::BadUrl(format!(
                            "unknown sqlite option '{pair}' (known: max_pages)"
                        )))
                    }
                }
            }
            return Ok(StoreUrl::Sqlite {
                path: path.into(),
                max_pages,
            });
        }
        Err(StoreError::BadUrl(format!(
            "'{url}' is not a store URL: use sqlite:PATH, postgres://USER@HOST/DB or none"
        )))
    }

    /// The URL for logs: a PostgreSQL password is never shown.
    pub fn redacted(&self) -> String {
        match self {
            StoreUrl::None => "none".into(),
            StoreUrl::Sqlite { path, .. } => format!("sqlite:{}", path.display()),
            StoreUrl::Postgres(url) => redact_password(url),
        }
    }
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.split_once('@') {
        Some(x) => x,
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// A consult store. Every method may fail with [`StoreError::Unavailable`]; the store
/// reconnects (or reopens its file) by itself on a later call.
#[async_trait]
pub trait ConsultStore: Send + Sync {
    /// `sqlite:PATH` or the PostgreSQL URL without its password.
    fn describe(&self) -> String;

    /// Commits `write` (group-committed with the other writes queued at the same time) and
    /// returns once it is durable.
    async fn write(&self, write: Write) -> Result<Written, StoreError>;

    /// Whether a write can be committed now (readiness).
    async fn check_writable(&self) -> Result<(), StoreError>;

    async fn get(&self, id: &str) -> Result<Option<Consult>, StoreError>;

    /// Consults matching `q`, in its order, at most `q.count` of them, and the cursor of the
    /// next page when there is one.
    async fn search(&self, q: &ConsultQuery) -> Result<Page, StoreError>;

    /// The consults that redirected the ServiceRequest with this id (its redirected id).
    async fn by_redirected(&self, sr_id: &str) -> Result<Vec<Consult>, StoreError>;

    /// Statistics of the consults decided in `[since, until)` (microseconds since the epoch).
    async fn stats(&self, since: Option<i64>, until: Option<i64>) -> Result<Stats, StoreError>;

    /// Consults decided in `[since, until)` per bucket of `bucket_us` microseconds (the first
    /// bucket starts at `since`) and decision.
    async fn timeline(
        &self,
        since: i64,
        until: i64,
        bucket_us: i64,
    ) -> Result<Vec<TimeCount>, StoreError>;

    /// The CDS Hooks feedback received about a consult, oldest first.
    async fn feedback(&self, consult_id: &str) -> Result<Vec<FeedbackRecord>, StoreError>;

    /// The consult a CDS Hooks card was issued for.
    async fn card(&self, card_uuid: &str) -> Result<Option<CardLink>, StoreError>;

    /// The rule-set files of a version, as kept when it was first used (JSON object
    /// `{"rules": {path: text}, "profiles": {path: text}}`).
    async fn rule_set(&self, version: &str) -> Result<Option<String>, StoreError>;
}

/// Opens the store `url` names: creates the SQLite file (and its folder) when missing, and runs
/// the migrations. `None` for `--store none`.
///
/// A store that cannot be opened now (a locked or corrupt file, PostgreSQL not answering) is
/// still returned: it answers [`StoreError::Unavailable`] and tries again on each write, so
/// that the gateway starts, says it is not ready, and recovers by itself.
pub async fn open(
    url: &StoreUrl,
    sync: StoreSync,
) -> Result<Option<Arc<dyn ConsultStore>>, StoreError> {
    Ok(match url {
        StoreUrl::None => None,
        StoreUrl::Sqlite { path, max_pages } => Some(Arc::new(sqlite::SqliteStore::open(
            path.clone(),
            *max_pages,
            sync,
        )?)),
        StoreUrl::Postgres(conn) => Some(Arc::new(postgres::PgStore::open(conn).await?)),
    })
}

/// How long a commit may take before it counts as failed (and the request is answered 503).
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Most writes committed in one transaction.
pub const MAX_GROUP: usize = 256;

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// A FHIR `instant` (UTC, microseconds) of a time in microseconds since the epoch.
pub fn instant(us: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// The time span `[from, to)` (microseconds since the epoch) a FHIR date, dateTime or instant
/// means: a whole day, month or year for a date; one second for a dateTime without fractions.
pub fn time_span(text: &str) -> Result<(i64, i64), String> {
    if text.contains('T') {
        let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map_err(|e| {
            format!("'{text}' is not a FHIR instant (e.g. 2026-03-01T09:30:00Z): {e}")
        })?;
        let us = i64::try_from(t.unix_timestamp_nanos() / 1000).map_err(|_| "out of range")?;
        let width = if t.nanosecond() == 0 { 1_000_000 } else { 1 };
        return Ok((us, us + width));
    }
    let range = crate::dates::parse_fhir_datetime(text)?;
    let start = |d: time::Date| d.midnight().assume_utc().unix_timestamp() * 1_000_000;
    let end = range.latest.next_day().map(start).unwrap_or(i64::MAX);
    Ok((start(range.earliest), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(StoreUrl::parse("none").unwrap(), StoreUrl::None);
        assert_eq!(
            StoreUrl::parse("sqlite:data/x.sqlite").unwrap(),
            StoreUrl::Sqlite {
                path: "data/x.sqlite".into(),
                max_pages: None
            }
        );
        assert_eq!(
            StoreUrl::parse("sqlite:/tmp/x.sqlite?max_pages=40").unwrap(),
            StoreUrl::Sqlite {
                path: "/tmp/x.sqlite".into(),
                max_pages: Some(40)
            }
        );
        assert!(StoreUrl::parse("sqlite:").is_err());
        assert!(StoreUrl::parse("sqlite:x?cache=1").is_err());
        assert!(StoreUrl::parse("mysql://x").is_err());
        assert_eq!(
            StoreUrl::parse("postgres://rg:secret@db:5432/rg")
                .unwrap()
                .redacted(),
            "postgres://rg:***@db:5432/rg"
        );
    }

    #[test]
    fn time_spans() {
        let day = 86_400_000_000;
        let (a, b) = time_span("2026-03-01").unwrap();
        assert_eq!(b - a, day);
        assert_eq!(instant(a), "2026-03-01T00:00:00.000000Z");
        let (a, b) = time_span("2026-02").unwrap();
        assert_eq!(b - a, 28 * day);
        let (a, b) = time_span("2026-03-01T10:00:00+01:00").unwrap();
        assert_eq!(instant(a), "2026-03-01T09:00:00.000000Z");
        assert_eq!(b - a, 1_000_000);
        assert!(time_span("yesterday").is_err());
        assert!(time_span("2026-13-01").is_err());
    }

    #[test]
    fn instants() {
        assert_eq!(instant(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(instant(1_500_000), "1970-01-01T00:00:01.500000Z");
    }
}
