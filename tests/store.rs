//! The consult store (contract §6), one suite run against both stores: SQLite in a temporary
//! file and PostgreSQL in a database of the test's own (skipped loudly without PostgreSQL;
//! failing under `CI=true`).

mod common;

use common::pg::TestDb;
use referral_gateway::store::{
    self, CardLink, Consult, ConsultQuery, ConsultStore, FeedbackRecord, RuleSetRecord, StoreError,
    StoreSync, StoreUrl, Write,
};
use std::path::PathBuf;
use std::sync::Arc;

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "rg-store-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const T0: i64 = 1_772_000_000_000_000; // 2026-02-25

fn consult(n: i64, decision: &str, fired: &[&str]) -> Consult {
    Consult {
        id: uuid::Uuid::now_v7().to_string(),
        received_at: T0 + n * 1_000_000 - 500,
        decided_at: T0 + n * 1_000_000,
        rule_set: "0123456789abcdef".into(),
        client: if n % 2 == 0 { "10.0.0.2" } else { "10.0.0.3" }.into(),
        channel: "rest".into(),
        entry_index: None,
        hook_instance: None,
        request_hash: format!("{n:064x}"),
        request_body: Some(format!(
            "{{\"resourceType\":\"ServiceRequest\",\"id\":\"sr{n}\"}}"
        )),
        decision: decision.into(),
        http_status: if decision == "rejected" { 422 } else { 200 },
        summary: format!("{decision} #{n}"),
        fired: fired.iter().map(|s| s.to_string()).collect(),
        shadow_fired: Vec::new(),
        outcome: "{\"resourceType\":\"OperationOutcome\",\"issue\":[]}".into(),
        redirected: None,
        redirected_id: None,
        sr_reference: Some(format!("ServiceRequest/sr{n}")),
        placer_identifier: Some(format!("https://gp.example/orders|ORD{n}")),
        subject_system: Some("https://fhir.nhs.uk/Id/nhs-number".into()),
        subject_value: Some(format!("943476{n:04}")),
        requester_org: Some(if n % 3 == 0 { "A81001" } else { "B82002" }.into()),
        retry_key: None,
        latency_us: 500 + n,
        forwarding: None,
    }
}

/// The suite, on one store.
async fn suite(s: Arc<dyn ConsultStore>) {
    s.check_writable().await.expect("writable");
    // Record 30 consults in several writes; get one back whole.
    let mut all = Vec::new();
    for chunk in 0..3 {
        let batch: Vec<Consult> = (0..10)
            .map(|i| {
                let n = chunk * 10 + i;
                match n % 3 {
                    0 => consult(n, "rejected", &["US05"]),
                    1 => consult(n, "accepted", &[]),
                    _ => {
                        let mut c = consult(n, "redirected", &["XR01", "US05"]);
                        c.redirected_id = Some(format!("redir-{n}"));
                        c.redirected = Some(format!("{{\"resourceType\":\"ServiceRequest\",\"id\":\"redir-{n}\",\"note\":[{{\"text\":\"Redirected by guidance rule XR01\"}}]}}"));
                        c.shadow_fired = vec!["CT09".into()];
                        c
                    }
                }
            })
            .collect();
        let written = s
            .write(Write::Consults(batch.clone()))
            .await
            .expect("write");
        assert_eq!(
            written.ids,
            batch.iter().map(|c| c.id.clone()).collect::<Vec<_>>()
        );
        all.extend(batch);
    }
    let got = s.get(&all[5].id).await.expect("get").expect("found");
    assert_eq!(got, all[5]);
    assert_eq!(s.get("no-such-consult").await.expect("get"), None);

    // Search: filters, order, and keyset paging that neither repeats nor skips.
    let q = |f: &dyn Fn(&mut ConsultQuery)| {
        let mut q = ConsultQuery {
            newest_first: true,
            count: 50,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let rejected = s
        .search(&q(&|q| q.decision = Some("rejected".into())))
        .await
        .expect("search");
    assert_eq!(rejected.consults.len(), 10);
    assert!(rejected.consults.iter().all(|c| c.decision == "rejected"));
    assert!(rejected
        .consults
        .windows(2)
        .all(|w| w[0].decided_at > w[1].decided_at));
    let ok = s
        .search(&q(&|q| q.outcome = Some("0".into())))
        .await
        .expect("search");
    assert_eq!(ok.consults.len(), 20);
    let by_rule = s
        .search(&q(&|q| q.rule = Some("XR01".into())))
        .await
        .expect("search");
    assert_eq!(by_rule.consults.len(), 10);
    let shadow_only = s
        .search(&q(&|q| q.rule = Some("CT09".into())))
        .await
        .expect("search");
    assert_eq!(
        shadow_only.consults.len(),
        0,
        "a shadow rule is not a fired rule"
    );
    let by_patient = s
        .search(&q(&|q| q.subject_value = Some("9434760007".into())))
        .await
        .expect("search");
    assert_eq!(by_patient.consults.len(), 1);
    assert_eq!(by_patient.consults[0].id, all[7].id);
    let by_org = s
        .search(&q(&|q| q.requester_org = Some("A81001".into())))
        .await
        .expect("search");
    assert_eq!(by_org.consults.len(), 10);
    let by_placer = s
        .search(&q(&|q| q.entity_identifier = Some("ORD12".into())))
        .await
        .expect("search");
    assert_eq!(by_placer.consults.len(), 1);
    let by_client = s
        .search(&q(&|q| q.client = Some("10.0.0.3".into())))
        .await
        .expect("search");
    assert_eq!(by_client.consults.len(), 15);
    let window = s
        .search(&q(&|q| {
            q.since = Some(T0 + 10_000_000);
            q.until = Some(T0 + 20_000_000);
        }))
        .await
        .expect("search");
    assert_eq!(window.consults.len(), 10);
    for newest_first in [true, false] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = s
                .search(&q(&|q| {
                    q.count = 7;
                    q.newest_first = newest_first;
                    q.after = after.clone();
                }))
                .await
                .expect("page");
            assert!(page.consults.len() <= 7);
            seen.extend(page.consults.iter().map(|c| c.id.clone()));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let mut expected: Vec<String> = all.iter().map(|c| c.id.clone()).collect();
        if newest_first {
            expected.reverse();
        }
        assert_eq!(seen, expected, "paging newest_first={newest_first}");
    }

    // Redirects are found by the redirected request's id.
    let redirect = s.by_redirected("redir-8").await.expect("by redirect");
    assert_eq!(redirect.len(), 1);
    assert_eq!(redirect[0].id, all[8].id);

    // A retry (same key) is the same consult; a new request is not.
    let mut first = consult(40, "accepted", &[]);
    first.retry_key = Some("10.0.0.2\u{1f}placer:x|1\u{1f}abc".into());
    let mut again = consult(40, "accepted", &[]);
    again.retry_key = first.retry_key.clone();
    let w1 = s
        .write(Write::Consults(vec![first.clone()]))
        .await
        .expect("first");
    let w2 = s
        .write(Write::Consults(vec![again.clone()]))
        .await
        .expect("retry");
    assert_eq!(w1.ids, vec![first.id.clone()]);
    assert_eq!(
        w2.ids,
        vec![first.id.clone()],
        "a retry maps to the first consult"
    );
    assert_eq!(s.get(&again.id).await.expect("get"), None);

    // Rule sets are kept once.
    let rs = RuleSetRecord {
        version: "0123456789abcdef".into(),
        files: "{\"rules\":{},\"profiles\":{}}".into(),
    };
    s.write(Write::RuleSet(rs.clone())).await.expect("rule set");
    s.write(Write::RuleSet(rs.clone()))
        .await
        .expect("rule set again");
    assert_eq!(
        s.rule_set(&rs.version).await.expect("read"),
        Some(rs.files.clone())
    );

    // CDS feedback against the consult of its card feeds the override figures.
    s.write(Write::Cards(vec![CardLink {
        card_uuid: "card-1".into(),
        consult_id: all[0].id.clone(),
        rule_id: Some("US05".into()),
        service: "imaging-order-sign".into(),
    }]))
    .await
    .expect("cards");
    let link = s.card("card-1").await.expect("card").expect("known");
    assert_eq!(link.consult_id, all[0].id);
    for (i, reason) in [
        "patient-preference",
        "patient-preference",
        "clinical-judgement",
    ]
    .iter()
    .enumerate()
    {
        s.write(Write::Feedback(vec![FeedbackRecord {
            id: format!("fb-{i}"),
            card_uuid: "card-1".into(),
            consult_id: Some(all[0].id.clone()),
            rule_id: Some("US05".into()),
            outcome: "overridden".into(),
            reason_code: Some(reason.to_string()),
            reason_display: None,
            received_at: T0 + 100_000_000,
        }]))
        .await
        .expect("feedback");
    }

    // Statistics, computed by the database.
    let st = s.stats(None, Some(T0 + 30_000_000)).await.expect("stats");
    assert_eq!(st.total, 30);
    assert_eq!(
        st.decisions,
        vec![
            ("accepted".into(), 10),
            ("redirected".into(), 10),
            ("rejected".into(), 10)
        ]
    );
    assert_eq!(
        st.clients,
        vec![("10.0.0.2".into(), 15), ("10.0.0.3".into(), 15)]
    );
    let us05 = st.rules.iter().find(|r| r.id == "US05").expect("US05");
    assert_eq!((us05.fired, us05.overridden), (20, 3));
    assert_eq!(
        us05.override_reasons,
        vec![
            ("clinical-judgement".into(), 1),
            ("patient-preference".into(), 2)
        ]
    );
    let ct09 = st.rules.iter().find(|r| r.id == "CT09").expect("CT09");
    assert_eq!((ct09.fired, ct09.shadow_fired), (0, 10));
    // Latencies are 500 + n µs for n in 0..30: p50 is the 15th, p99 the 30th.
    assert_eq!(st.p50_us, Some(514));
    assert_eq!(st.p99_us, Some(529));
    let window = s
        .stats(Some(T0 + 10_000_000), Some(T0 + 20_000_000))
        .await
        .expect("stats");
    assert_eq!(window.total, 10);

    // CDS Hooks calls of one hookInstance count once per order.
    let mut cds = Vec::new();
    for k in 0..3 {
        let mut c = consult(50 + k, "accepted", &[]);
        c.channel = "cds-hooks".into();
        c.hook_instance = Some("order-select/5f3c".into());
        c.entry_index = Some(0);
        cds.push(c);
    }
    s.write(Write::Consults(cds)).await.expect("cds");
    let st = s.stats(Some(T0 + 50_000_000), None).await.expect("stats");
    assert_eq!(st.total, 1, "{st:?}");

    // Purge: everything decided before the cut goes, with its rules, cards and feedback.
    let purged = s
        .write(Write::Purge {
            before: T0 + 15_000_000,
        })
        .await
        .expect("purge");
    assert_eq!(purged.rows, 15);
    assert_eq!(s.get(&all[0].id).await.expect("get"), None);
    assert!(s.get(&all[20].id).await.expect("get").is_some());
    let st = s.stats(None, Some(T0 + 30_000_000)).await.expect("stats");
    assert_eq!(st.total, 15);
    assert!(st.rules.iter().all(|r| r.overridden == 0));
}

#[tokio::test]
async fn sqlite_store() {
    let dir = Scratch::new("suite");
    let url = StoreUrl::parse(&format!(
        "sqlite:{}",
        dir.0.join("sub/dir/c.sqlite").display()
    ))
    .expect("url");
    let s = store::open(&url, StoreSync::Full)
        .await
        .expect("open")
        .expect("a store");
    suite(s).await;
    assert!(
        dir.0.join("sub/dir/c.sqlite").is_file(),
        "the file and its folders are created"
    );
}

#[tokio::test]
async fn postgres_store() {
    let Some(db) = TestDb::create("postgres_store") else {
        return;
    };
    let url = StoreUrl::parse(&db.url).expect("url");
    let s = store::open(&url, StoreSync::Normal)
        .await
        .expect("open")
        .expect("a store");
    suite(s).await;
}

/// A database at the previous schema version, with consults in it, is migrated at start-up
/// and its consults are still read.
async fn migrates_from_version_1(
    s_at_v1: impl AsyncFnOnce() -> Arc<dyn ConsultStore>,
    seed: impl AsyncFnOnce(Consult),
) {
    let old = consult(1, "accepted", &["US05"]);
    seed(old.clone()).await;
    let s = s_at_v1().await;
    let got = s.get(&old.id).await.expect("get").expect("the old consult");
    assert_eq!(got.id, old.id);
    assert_eq!(got.forwarding, None);
    s.write(Write::Consults(vec![consult(2, "rejected", &[])]))
        .await
        .expect("write after migration");
}

#[tokio::test]
async fn sqlite_migrates_an_older_schema() {
    let dir = Scratch::new("migrate");
    let path = dir.0.join("old.sqlite");
    let p = path.clone();
    migrates_from_version_1(
        async || {
            let url = StoreUrl::parse(&format!("sqlite:{}", path.display())).expect("url");
            store::open(&url, StoreSync::Normal).await.expect("open").expect("store")
        },
        async move |c: Consult| {
            let mut conn = rusqlite::Connection::open(&p).expect("open");
            store::sqlite::migrate_to(&mut conn, Some(1)).expect("v1");
            conn.execute(
                "INSERT INTO consults (id, received_at, decided_at, rule_set, client, channel, count_key, request_hash, decision, http_status, summary, fired, shadow_fired, outcome, latency_us) VALUES (?1, 1, 2, 'r', 'c', 'rest', ?1, 'h', 'accepted', 200, 's', 'US05', '', '{}', 1)",
                [&c.id],
            )
            .expect("insert at v1");
        },
    )
    .await;
}

#[tokio::test]
async fn postgres_migrates_an_older_schema() {
    let Some(db) = TestDb::create("postgres_migrates_an_older_schema") else {
        return;
    };
    let url = db.url.clone();
    migrates_from_version_1(
        async || {
            let u = StoreUrl::parse(&url).expect("url");
            store::open(&u, StoreSync::Normal).await.expect("open").expect("store")
        },
        async |c: Consult| {
            let (mut client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(conn);
            store::postgres::migrate_to(&mut client, Some(1)).await.expect("v1");
            client
                .execute(
                    "INSERT INTO consults (id, received_at, decided_at, rule_set, client, channel, count_key, request_hash, decision, http_status, summary, fired, shadow_fired, outcome, latency_us) VALUES ($1, 1, 2, 'r', 'c', 'rest', $1, 'h', 'accepted', 200, 's', 'US05', '', '{}', 1)",
                    &[&c.id],
                )
                .await
                .expect("insert at v1");
        },
    )
    .await;
}

/// A full disk (the file capped by a page limit): writes fail as Unavailable, and succeed
/// again once space is freed (here by purging), without restarting.
#[tokio::test]
async fn sqlite_full_disk_fails_then_recovers() {
    let dir = Scratch::new("full");
    let path = dir.0.join("full.sqlite");
    let url = StoreUrl::parse(&format!("sqlite:{}?max_pages=60", path.display())).expect("url");
    let s = store::open(&url, StoreSync::Normal)
        .await
        .expect("open")
        .expect("store");
    let mut n = 0;
    let failure = loop {
        let mut c = consult(n, "accepted", &["US05"]);
        c.request_body = Some("x".repeat(2000));
        match s.write(Write::Consults(vec![c])).await {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 10_000, "the page limit never filled");
    };
    assert!(matches!(failure, StoreError::Unavailable(_)), "{failure:?}");
    assert!(failure.to_string().contains("full"), "{failure}");
    // Nothing committed was lost.
    let page = s
        .search(&ConsultQuery {
            newest_first: false,
            count: 1000,
            ..Default::default()
        })
        .await
        .expect("read while full");
    assert_eq!(page.consults.len(), n as usize);
    // Free space: purge the older half, from another connection (as `audit purge` does).
    let purge_url = url.clone();
    let other = store::open(&purge_url, StoreSync::Normal)
        .await
        .expect("open")
        .expect("store");
    let cut = T0 + (n / 2) * 1_000_000;
    other
        .write(Write::Purge { before: cut })
        .await
        .expect("purge");
    let mut c = consult(n + 1, "accepted", &[]);
    c.request_body = Some("x".repeat(2000));
    s.write(Write::Consults(vec![c])).await.expect("recovered");
}

/// Rows in the jti table, counted by the caller's own connection.
type CountJtis = Box<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = i64>>>>;

/// The CDS Hooks jti replay cache over two handles on one store (two replicas, or one gateway
/// before and after a restart): a jti used through one is refused through the other; an
/// expired one is purged.
async fn replay_cache_suite(a: Arc<dyn ConsultStore>, b: Arc<dyn ConsultStore>, count: CountJtis) {
    use referral_gateway::auth::cds::ReplayCache;
    use referral_gateway::auth::replay::StoreReplayCache;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    // An expired jti left behind by an earlier run (written directly, without purging).
    a.write(Write::Jti {
        issuer: "https://ehr.test".into(),
        jti: "old".into(),
        expires: now as i64 - 100,
        now: now as i64 - 200,
        purge: false,
    })
    .await
    .expect("old jti");
    assert_eq!(count().await, 1);
    let first = StoreReplayCache::new(a.clone());
    let second = StoreReplayCache::new(b.clone());
    assert!(first
        .first_use("https://ehr.test", "j-1", now + 300)
        .await
        .expect("first use"));
    // The first use by this process purged the expired jti.
    assert_eq!(count().await, 1, "the expired jti is purged");
    assert!(
        !second
            .first_use("https://ehr.test", "j-1", now + 300)
            .await
            .expect("replay"),
        "a replay through another handle on the same store is refused"
    );
    assert!(!first
        .first_use("https://ehr.test", "j-1", now + 300)
        .await
        .expect("replay"));
    // The same jti from another issuer is another token.
    assert!(second
        .first_use("https://other-ehr.test", "j-1", now + 300)
        .await
        .expect("other issuer"));
    // An expired jti (not yet purged) may be used again.
    a.write(Write::Jti {
        issuer: "https://ehr.test".into(),
        jti: "j-2".into(),
        expires: now as i64 - 5,
        now: now as i64 - 10,
        purge: false,
    })
    .await
    .expect("expired jti");
    assert!(second
        .first_use("https://ehr.test", "j-2", now + 300)
        .await
        .expect("expired jti reused"));
    assert!(!first
        .first_use("https://ehr.test", "j-2", now + 300)
        .await
        .expect("then a replay"));
    assert_eq!(count().await, 3);
}

#[tokio::test]
async fn sqlite_jti_replay_cache() {
    let dir = Scratch::new("jti");
    let path = dir.0.join("jti.sqlite");
    let url = StoreUrl::parse(&format!("sqlite:{}", path.display())).expect("url");
    let open = async || {
        store::open(&url, StoreSync::Normal)
            .await
            .expect("open")
            .expect("store")
    };
    let (a, b) = (open().await, open().await);
    let p = path.clone();
    replay_cache_suite(
        a,
        b,
        Box::new(move || {
            let p = p.clone();
            Box::pin(async move {
                rusqlite::Connection::open(&p)
                    .expect("open")
                    .query_row("SELECT COUNT(*) FROM cds_jti", [], |r| r.get(0))
                    .expect("count")
            })
        }),
    )
    .await;
}

#[tokio::test]
async fn postgres_jti_replay_cache() {
    let Some(db) = TestDb::create("postgres_jti_replay_cache") else {
        return;
    };
    let url = StoreUrl::parse(&db.url).expect("url");
    let open = async || {
        store::open(&url, StoreSync::Normal)
            .await
            .expect("open")
            .expect("store")
    };
    let (a, b) = (open().await, open().await);
    let conn_url = db.url.clone();
    replay_cache_suite(
        a,
        b,
        Box::new(move || {
            let u = conn_url.clone();
            Box::pin(async move {
                let (client, conn) = tokio_postgres::connect(&u, tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                tokio::spawn(conn);
                client
                    .query_one("SELECT COUNT(*) FROM cds_jti", &[])
                    .await
                    .expect("count")
                    .get::<_, i64>(0)
            })
        }),
    )
    .await;
}
