//! A PostgreSQL database of the test's own, on the server the machine runs (127.0.0.1:5432,
//! or `REFERRAL_GATEWAY_TEST_POSTGRES`), dropped when the test ends. Without a server the
//! test says so loudly and is skipped, and fails when `CI=true`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The maintenance database of the server tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("REFERRAL_GATEWAY_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct TestDb {
    pub name: String,
    /// `postgres://.../NAME`
    pub url: String,
    admin: String,
}

/// Runs `sql` on the maintenance database; `None` when the server cannot be reached.
pub fn admin(sql: &str) -> Option<()> {
    admin_on(&admin_url(), sql)
}

fn admin_on(url: &str, sql: &str) -> Option<()> {
    let url = url.to_string();
    let sql = sql.to_string();
    // On a thread of its own: callers may be inside a runtime already.
    std::thread::spawn(move || admin_blocking(url, sql))
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

fn admin_blocking(url: String, sql: String) -> Option<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async move {
        let mut config: tokio_postgres::Config = url.parse().ok()?;
        config.connect_timeout(Duration::from_secs(3));
        let (client, conn) = config.connect(tokio_postgres::NoTls).await.ok()?;
        tokio::spawn(conn);
        match client.batch_execute(&sql).await {
            Ok(()) => Some(()),
            Err(e) => panic!("PostgreSQL: {sql}: {e}"),
        }
    })
}

/// Whether PostgreSQL is reachable; when it is not, says so loudly (and panics under CI).
pub fn available(test: &str) -> bool {
    if admin("SELECT 1").is_some() {
        return true;
    }
    let msg = format!(
        "SKIPPED {test}: no PostgreSQL at {} (start one, or set REFERRAL_GATEWAY_TEST_POSTGRES)",
        admin_url()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}; CI=true requires PostgreSQL");
    }
    eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
    false
}

impl TestDb {
    /// A fresh database, or `None` (after saying why) without PostgreSQL.
    pub fn create(test: &str) -> Option<Self> {
        if !available(test) {
            return None;
        }
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "rg_test_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .get(..8)
                .unwrap_or("x")
        );
        admin(&format!("CREATE DATABASE {name}"))?;
        let admin_url = admin_url();
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin_url.clone());
        Some(TestDb {
            url: format!("{base}/{name}"),
            name,
            admin: admin_url,
        })
    }

    /// Refuses new connections to this database and ends the ones it has: "PostgreSQL went
    /// away", for this test's database only.
    pub fn cut(&self) {
        admin_on(
            &self.admin,
            &format!(
                "ALTER DATABASE {0} ALLOW_CONNECTIONS false; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{0}' AND pid <> pg_backend_pid();",
                self.name
            ),
        );
    }

    /// Lets connections in again.
    pub fn restore(&self) {
        admin_on(
            &self.admin,
            &format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", self.name),
        );
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            admin_on(
                &self.admin,
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            )
        });
    }
}
