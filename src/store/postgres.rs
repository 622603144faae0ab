//! The shared store: PostgreSQL, for several gateway replicas on one database.
//!
//! One writer task holds the write connection and group-commits everything queued in one
//! transaction; reads use a second connection. A connection that fails or does not answer
//! within [`super::COMMIT_TIMEOUT`] is dropped, and the next call connects again: while the
//! database is away requests are answered 503; when it is back they are recorded again.
//!
//! Plain TCP, no TLS (the database sits beside the replicas; put TLS in front of it with the
//! network if it does not). Migrations run under a PostgreSQL advisory lock, so replicas
//! starting together migrate once.

use super::sql::{self, Db, Row, SqlValue};
use super::{
    CardLink, Consult, ConsultQuery, ConsultStore, FeedbackRecord, Page, Stats, StoreError,
    TimeCount, Write, Written, COMMIT_TIMEOUT, MAX_GROUP,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, Statement};

/// Key of the advisory lock taken while migrating ("rgmigrat" in ASCII).
const MIGRATION_LOCK: i64 = 0x7267_6d69_6772_6174;

impl ToSql for SqlValue {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            SqlValue::Int(Some(n)) if *ty == Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
            SqlValue::Int(Some(n)) => n.to_sql(ty, out),
            SqlValue::Text(Some(t)) => t.as_str().to_sql(ty, out),
            SqlValue::Int(None) | SqlValue::Text(None) => Ok(IsNull::Yes),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT8 | Type::INT4 | Type::TEXT | Type::VARCHAR | Type::NAME
        )
    }

    tokio_postgres::types::to_sql_checked!();
}

fn error(e: tokio_postgres::Error) -> StoreError {
    match e.code() {
        Some(c) if c.code().starts_with("23") => StoreError::Corrupt(format!("PostgreSQL: {e}")),
        _ => StoreError::Unavailable(format!("PostgreSQL: {e}")),
    }
}

/// `?` placeholders numbered `$1, $2, ...`.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// A connection with its prepared statements.
struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl Conn {
    async fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(&numbered(sql)).await.map_err(error)?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

fn refs(params: &[SqlValue]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Db for Conn {
    async fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, StoreError> {
        let s = self.statement(sql).await?;
        self.client.execute(&s, &refs(params)).await.map_err(error)
    }

    async fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        let s = self.statement(sql).await?;
        let rows = self.client.query(&s, &refs(params)).await.map_err(error)?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        let ty = row.columns()[i].type_();
                        Ok(match *ty {
                            Type::INT8 => {
                                SqlValue::Int(row.try_get::<_, Option<i64>>(i).map_err(error)?)
                            }
                            Type::INT4 => SqlValue::Int(
                                row.try_get::<_, Option<i32>>(i)
                                    .map_err(error)?
                                    .map(i64::from),
                            ),
                            Type::TEXT | Type::VARCHAR | Type::NAME => {
                                SqlValue::Text(row.try_get::<_, Option<String>>(i).map_err(error)?)
                            }
                            _ => {
                                return Err(StoreError::Corrupt(format!(
                                    "unexpected column type {ty}"
                                )))
                            }
                        })
                    })
                    .collect()
            })
            .collect()
    }
}

/// Connects, and migrates the database (once per process is enough, but it is cheap).
async fn connect(config: &Config) -> Result<Conn, StoreError> {
    let (mut client, connection) = tokio::time::timeout(COMMIT_TIMEOUT, config.connect(NoTls))
        .await
        .map_err(|_| StoreError::Unavailable("PostgreSQL: connecting timed out".into()))?
        .map_err(error)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
    migrate_to(&mut client, None).await?;
    Ok(Conn {
        client,
        statements: HashMap::new(),
    })
}

/// Runs the migrations not yet applied (up to `version`, all when `None`), under an advisory
/// lock so that replicas starting together migrate once.
pub async fn migrate_to(client: &mut Client, version: Option<u32>) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(error)?;
    let result = refinery::Runner::new(&sql::migrations(version))
        .run_async(client)
        .await
        .map(|_| ())
        .map_err(|e| StoreError::Unavailable(format!("PostgreSQL migrations: {e}")));
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(error);
    result.and(unlocked.map(|_| ()))
}

struct Job {
    write: Write,
    done: oneshot::Sender<Result<Written, StoreError>>,
}

async fn commit<'w>(
    slot: &mut Option<Conn>,
    config: &Config,
    writes: impl Iterator<Item = &'w Write>,
) -> Result<Vec<Written>, StoreError> {
    let conn = match slot.take() {
        Some(c) if !c.client.is_closed() => slot.insert(c),
        _ => slot.insert(connect(config).await?),
    };
    let work = async {
        conn.client.batch_execute("BEGIN").await.map_err(error)?;
        let mut out = Vec::new();
        for w in writes {
            match sql::apply(conn, w).await {
                Ok(r) => out.push(r),
                Err(e) => {
                    let _ = conn.client.batch_execute("ROLLBACK").await;
                    return Err(e);
                }
            }
        }
        conn.client.batch_execute("COMMIT").await.map_err(error)?;
        Ok(out)
    };
    let result = match tokio::time::timeout(COMMIT_TIMEOUT, work).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Unavailable(
            "PostgreSQL: the commit timed out".into(),
        )),
    };
    if let Err(StoreError::Unavailable(_)) = &result {
        // A connection that failed or hung may be mid-transaction: never reuse it.
        *slot = None;
    }
    result
}

async fn writer(config: Config, mut jobs: mpsc::Receiver<Job>) {
    let mut conn: Option<Conn> = None;
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        let results: Vec<Result<Written, StoreError>> =
            match commit(&mut conn, &config, group.iter().map(|j| &j.write)).await {
                Ok(r) => r.into_iter().map(Ok).collect(),
                Err(StoreError::Corrupt(_)) if group.len() > 1 => {
                    let mut each = Vec::new();
                    for j in &group {
                        each.push(
                            commit(&mut conn, &config, std::iter::once(&j.write))
                                .await
                                .map(|mut r| r.remove(0)),
                        );
                    }
                    each
                }
                Err(e) => group.iter().map(|_| Err(e.clone())).collect(),
            };
        for (job, result) in group.into_iter().zip(results) {
            let _ = job.done.send(result);
        }
    }
}

pub struct PgStore {
    config: Config,
    display: String,
    jobs: mpsc::Sender<Job>,
    reader: Arc<Mutex<Option<Conn>>>,
}

impl PgStore {
    /// Parses the URL and starts the writer. The database is connected (and migrated) now;
    /// when it cannot be, the error is logged and every call tries again.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let mut config: Config = url
            .parse()
            .map_err(|e| StoreError::BadUrl(format!("{e}")))?;
        config.connect_timeout(Duration::from_secs(3));
        config.application_name("referral-gateway");
        let shown = super::StoreUrl::Postgres(url.to_string()).redacted();
        let reader = match connect(&config).await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(store = %shown, error = %e, "the consult store cannot be reached now; every decision will be answered 503 until it can");
                None
            }
        };
        let (tx, rx) = mpsc::channel(16 * MAX_GROUP);
        tokio::spawn(writer(config.clone(), rx));
        Ok(Self {
            config,
            display: shown,
            jobs: tx,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    async fn read<T>(
        &self,
        f: impl for<'c> AsyncFnOnce(&'c mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut slot = self.reader.lock().await;
        let conn = match slot.take() {
            Some(c) if !c.client.is_closed() => slot.insert(c),
            _ => slot.insert(connect(&self.config).await?),
        };
        let result = match tokio::time::timeout(COMMIT_TIMEOUT, f(conn)).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(
                "PostgreSQL: the query timed out".into(),
            )),
        };
        if let Err(StoreError::Unavailable(_)) = &result {
            *slot = None;
        }
        result
    }
}

#[async_trait]
impl ConsultStore for PgStore {
    fn describe(&self) -> String {
        self.display.clone()
    }

    async fn write(&self, write: Write) -> Result<Written, StoreError> {
        let (done, wait) = oneshot::channel();
        self.jobs
            .send(Job { write, done })
            .await
            .map_err(|_| StoreError::Unavailable("the writer task has stopped".into()))?;
        wait.await
            .map_err(|_| StoreError::Unavailable("the writer task has stopped".into()))?
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        self.write(Write::Consults(Vec::new())).await.map(|_| ())
    }

    async fn get(&self, id: &str) -> Result<Option<Consult>, StoreError> {
        self.read(async |c| sql::get(c, id).await).await
    }

    async fn search(&self, q: &ConsultQuery) -> Result<Page, StoreError> {
        self.read(async |c| sql::search(c, q).await).await
    }

    async fn by_redirected(&self, sr_id: &str) -> Result<Vec<Consult>, StoreError> {
        self.read(async |c| sql::by_redirected(c, sr_id).await)
            .await
    }

    async fn stats(&self, since: Option<i64>, until: Option<i64>) -> Result<Stats, StoreError> {
        self.read(async |c| sql::stats(c, since, until).await).await
    }

    async fn timeline(
        &self,
        since: i64,
        until: i64,
        bucket_us: i64,
    ) -> Result<Vec<TimeCount>, StoreError> {
        self.read(async |c| sql::timeline(c, since, until, bucket_us).await)
            .await
    }

    async fn feedback(&self, consult_id: &str) -> Result<Vec<FeedbackRecord>, StoreError> {
        self.read(async |c| sql::feedback(c, consult_id).await)
            .await
    }

    async fn card(&self, card_uuid: &str) -> Result<Option<CardLink>, StoreError> {
        self.read(async |c| sql::card(c, card_uuid).await).await
    }

    async fn rule_set(&self, version: &str) -> Result<Option<String>, StoreError> {
        self.read(async |c| sql::rule_set(c, version).await).await
    }
}
