//! The embedded store: one SQLite file (WAL journal), nothing to install.
//!
//! One writer thread owns the write connection and group-commits everything queued (see the
//! module docs of [`super`]); reads go through a second connection on the blocking pool, so
//! that a long search never delays a commit (WAL lets readers and the writer run together).
//!
//! Any error drops the connection; the next write opens the file again (and migrates it), so
//! that a file that was locked, full or replaced is used again as soon as it can be.

use super::sql::{self, Db, Row, SqlValue};
use super::{
    CardLink, Consult, ConsultQuery, ConsultStore, FeedbackRecord, Page, Stats, StoreError,
    StoreSync, TimeCount, Write, Written, MAX_GROUP,
};
use async_trait::async_trait;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long a statement waits for a lock held by another connection or process.
const BUSY_TIMEOUT: Duration = Duration::from_millis(1500);

struct Job {
    write: Write,
    done: oneshot::Sender<Result<Written, StoreError>>,
}

#[derive(Debug, Clone)]
struct Options {
    path: PathBuf,
    max_pages: Option<u64>,
    sync: StoreSync,
}

pub struct SqliteStore {
    options: Options,
    jobs: mpsc::Sender<Job>,
    reader: Arc<Mutex<Option<Connection>>>,
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            SqlValue::Int(Some(n)) => ToSqlOutput::from(*n),
            SqlValue::Text(Some(t)) => ToSqlOutput::from(t.as_str()),
            SqlValue::Int(None) | SqlValue::Text(None) => ToSqlOutput::from(rusqlite::types::Null),
        })
    }
}

fn error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(format!("SQLite: {e}")),
    }
}

/// A connection (or a transaction: it derefs to one) seen as a [`Db`].
struct SqliteDb<'c>(&'c Connection);

impl Db for SqliteDb<'_> {
    async fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(sql).map_err(error)?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params.iter()))
            .map_err(error)?;
        Ok(n as u64)
    }

    async fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.0.prepare_cached(sql).map_err(error)?;
        let columns = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(error)? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i).map_err(error)? {
                    ValueRef::Null => SqlValue::Text(None),
                    ValueRef::Integer(n) => SqlValue::Int(Some(n)),
                    ValueRef::Real(f) => SqlValue::Int(Some(f as i64)),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        SqlValue::Text(Some(String::from_utf8_lossy(t).into_owned()))
                    }
                });
            }
            out.push(values);
        }
        Ok(out)
    }
}

/// Opens the file (creating it and its folder) and brings its schema up to date.
fn connect(o: &Options) -> Result<Connection, StoreError> {
    if let Some(dir) = o.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create the folder {}: {e}", dir.display()))
        })?;
    }
    let mut conn = Connection::open(&o.path).map_err(error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(error)?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
        .map_err(error)?;
    conn.pragma_update(
        None,
        "synchronous",
        match o.sync {
            StoreSync::Normal => "NORMAL",
            StoreSync::Full => "FULL",
        },
    )
    .map_err(error)?;
    if let Some(pages) = o.max_pages {
        // The pragma answers with the new limit: read it, not execute it.
        conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
            .map_err(error)?;
    }
    migrate(&mut conn)?;
    Ok(conn)
}

/// Runs the migrations not yet applied (up to `version`, all when `None`).
pub fn migrate_to(conn: &mut Connection, version: Option<u32>) -> Result<(), StoreError> {
    refinery::Runner::new(&sql::migrations(version))
        .run(conn)
        .map(|_| ())
        .map_err(|e| StoreError::Unavailable(format!("SQLite migrations: {e}")))
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_to(conn, None)
}

/// Commits the jobs in one transaction; on a failure that is not the database's (a row that
/// cannot be written), commits each job alone so that one bad write fails only itself.
fn commit_group(
    slot: &mut Option<Connection>,
    o: &Options,
    jobs: &[Job],
) -> Vec<Result<Written, StoreError>> {
    let together = commit(slot, o, jobs.iter().map(|j| &j.write));
    match together {
        Ok(results) => results.into_iter().map(Ok).collect(),
        Err(StoreError::Corrupt(_)) if jobs.len() > 1 => jobs
            .iter()
            .map(|j| commit(slot, o, std::iter::once(&j.write)).map(|mut r| r.remove(0)))
            .collect(),
        Err(e) => jobs.iter().map(|_| Err(e.clone())).collect(),
    }
}

fn commit<'w>(
    slot: &mut Option<Connection>,
    o: &Options,
    writes: impl Iterator<Item = &'w Write>,
) -> Result<Vec<Written>, StoreError> {
    let conn = match slot.take() {
        Some(c) => slot.insert(c),
        None => slot.insert(connect(o)?),
    };
    let result = (|| {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        let mut out = Vec::new();
        for w in writes {
            out.push(futures_executor::block_on(sql::apply(
                &mut SqliteDb(&tx),
                w,
            ))?);
        }
        tx.commit().map_err(error)?;
        Ok(out)
    })();
    if let Err(StoreError::Unavailable(_)) = &result {
        // Start afresh next time: the file may have been replaced, unlocked or freed.
        *slot = None;
    }
    result
}

fn writer(o: Options, mut jobs: mpsc::Receiver<Job>) {
    let mut conn: Option<Connection> = None;
    while let Some(first) = jobs.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        let results = commit_group(&mut conn, &o, &group);
        for (job, result) in group.into_iter().zip(results) {
            let _ = job.done.send(result);
        }
    }
}

impl SqliteStore {
    /// Starts the writer thread. The file is opened (created, migrated) now; when that fails
    /// the error is logged and every write tries again.
    pub fn open(
        path: PathBuf,
        max_pages: Option<u64>,
        sync: StoreSync,
    ) -> Result<Self, StoreError> {
        let options = Options {
            path,
            max_pages,
            sync,
        };
        let reader = match connect(&options) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(store = %options.path.display(), error = %e, "the consult store cannot be opened now; every decision will be answered 503 until it can");
                None
            }
        };
        let (tx, rx) = mpsc::channel(16 * MAX_GROUP);
        let o = options.clone();
        std::thread::Builder::new()
            .name("consult-writer".into())
            .spawn(move || writer(o, rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            options,
            jobs: tx,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.options.path
    }

    /// Runs `f` on the read connection, on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SqliteDb<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.reader.clone();
        let o = self.options.clone();
        tokio::task::spawn_blocking(move || {
            let mut slot = reader.lock().unwrap_or_else(PoisonError::into_inner);
            let conn: &Connection = match slot.take() {
                Some(c) => slot.insert(c),
                None => slot.insert(connect(&o)?),
            };
            let result = f(&mut SqliteDb(conn));
            if let Err(StoreError::Unavailable(_)) = &result {
                *slot = None;
            }
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("the read task failed: {e}")))?
    }
}

#[async_trait]
impl ConsultStore for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.options.path.display())
    }

    async fn write(&self, write: Write) -> Result<Written, StoreError> {
        let (done, wait) = oneshot::channel();
        self.jobs
            .send(Job { write, done })
            .await
            .map_err(|_| StoreError::Unavailable("the writer thread has stopped".into()))?;
        wait.await
            .map_err(|_| StoreError::Unavailable("the writer thread has stopped".into()))?
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        // An empty group still opens the file and takes (then releases) the write lock.
        self.write(Write::Consults(Vec::new())).await.map(|_| ())
    }

    async fn get(&self, id: &str) -> Result<Option<Consult>, StoreError> {
        let id = id.to_string();
        self.read(move |db| futures_executor::block_on(sql::get(db, &id)))
            .await
    }

    async fn search(&self, q: &ConsultQuery) -> Result<Page, StoreError> {
        let q = q.clone();
        self.read(move |db| futures_executor::block_on(sql::search(db, &q)))
            .await
    }

    async fn by_redirected(&self, sr_id: &str) -> Result<Vec<Consult>, StoreError> {
        let id = sr_id.to_string();
        self.read(move |db| futures_executor::block_on(sql::by_redirected(db, &id)))
            .await
    }

    async fn stats(&self, since: Option<i64>, until: Option<i64>) -> Result<Stats, StoreError> {
        self.read(move |db| futures_executor::block_on(sql::stats(db, since, until)))
            .await
    }

    async fn timeline(
        &self,
        since: i64,
        until: i64,
        bucket_us: i64,
    ) -> Result<Vec<TimeCount>, StoreError> {
        self.read(move |db| futures_executor::block_on(sql::timeline(db, since, until, bucket_us)))
            .await
    }

    async fn feedback(&self, consult_id: &str) -> Result<Vec<FeedbackRecord>, StoreError> {
        let id = consult_id.to_string();
        self.read(move |db| futures_executor::block_on(sql::feedback(db, &id)))
            .await
    }

    async fn card(&self, card_uuid: &str) -> Result<Option<CardLink>, StoreError> {
        let id = card_uuid.to_string();
        self.read(move |db| futures_executor::block_on(sql::card(db, &id)))
            .await
    }

    async fn rule_set(&self, version: &str) -> Result<Option<String>, StoreError> {
        let v = version.to_string();
        self.read(move |db| futures_executor::block_on(sql::rule_set(db, &v)))
            .await
    }
}
