//! The SQL both stores speak: the schema as versioned migrations, and every statement, written
//! once over the small [`Db`] trait. Placeholders are `?`; the PostgreSQL store numbers them.
//!
//! Times are `BIGINT` microseconds since the Unix epoch (UTC), ids `TEXT`: the same columns
//! and comparisons on both databases. Statistics are computed by the database (indexes on the
//! decision time, the decision and the rule), never by loading consults.

use super::model::*;
use super::StoreError;

/// A parameter or column value. Nulls carry their type: PostgreSQL checks it.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Int(Option<i64>),
    Text(Option<String>),
}

impl SqlValue {
    fn int(&self) -> Result<Option<i64>, StoreError> {
        match self {
            SqlValue::Int(v) => Ok(*v),
            SqlValue::Text(None) => Ok(None),
            SqlValue::Text(Some(t)) => Err(StoreError::Corrupt(format!(
                "a number was expected, not '{t}'"
            ))),
        }
    }

    fn text(&self) -> Result<Option<String>, StoreError> {
        match self {
            SqlValue::Text(v) => Ok(v.clone()),
            SqlValue::Int(None) => Ok(None),
            SqlValue::Int(Some(n)) => Ok(Some(n.to_string())),
        }
    }
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::Int(Some(v))
    }
}
impl From<Option<i64>> for SqlValue {
    fn from(v: Option<i64>) -> Self {
        SqlValue::Int(v)
    }
}
impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(Some(v.to_string()))
    }
}
impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        SqlValue::Text(Some(v))
    }
}
impl From<&String> for SqlValue {
    fn from(v: &String) -> Self {
        SqlValue::Text(Some(v.clone()))
    }
}
impl From<Option<String>> for SqlValue {
    fn from(v: Option<String>) -> Self {
        SqlValue::Text(v)
    }
}
impl From<&Option<String>> for SqlValue {
    fn from(v: &Option<String>) -> Self {
        SqlValue::Text(v.clone())
    }
}

pub type Row = Vec<SqlValue>;

/// A connection (or transaction) of either store.
#[allow(async_fn_in_trait)]
pub trait Db {
    /// Runs a statement; returns the rows it changed.
    async fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, StoreError>;
    /// Runs a query; returns its rows.
    async fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StoreError>;
}

/// The migrations, oldest first. They only ever add (tables, columns, indexes), so the
/// previous version of the gateway keeps working on a migrated database (rolling upgrades).
pub const MIGRATIONS: [(&str, &str); 3] = [
    (
        "V1__consults",
        "CREATE TABLE consults (
            id TEXT PRIMARY KEY,
            received_at BIGINT NOT NULL,
            decided_at BIGINT NOT NULL,
            rule_set TEXT NOT NULL,
            client TEXT NOT NULL,
            channel TEXT NOT NULL,
            entry_index BIGINT,
            hook_instance TEXT,
            count_key TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            request_body TEXT,
            decision TEXT NOT NULL,
            http_status BIGINT NOT NULL,
            summary TEXT NOT NULL,
            fired TEXT NOT NULL,
            shadow_fired TEXT NOT NULL,
            outcome TEXT NOT NULL,
            redirected TEXT,
            redirected_id TEXT,
            sr_reference TEXT,
            placer_identifier TEXT,
            subject_system TEXT,
            subject_value TEXT,
            requester_org TEXT,
            retry_key TEXT UNIQUE,
            latency_us BIGINT NOT NULL
        );
        CREATE INDEX consults_decided ON consults (decided_at, id);
        CREATE INDEX consults_decision ON consults (decision, decided_at);
        CREATE INDEX consults_client ON consults (client, decided_at);
        CREATE INDEX consults_subject ON consults (subject_value);
        CREATE INDEX consults_org ON consults (requester_org);
        CREATE INDEX consults_placer ON consults (placer_identifier);
        CREATE INDEX consults_redirected ON consults (redirected_id);
        CREATE TABLE consult_rules (
            consult_id TEXT NOT NULL,
            rule_id TEXT NOT NULL,
            mode TEXT NOT NULL,
            decided_at BIGINT NOT NULL,
            PRIMARY KEY (consult_id, mode, rule_id)
        );
        CREATE INDEX consult_rules_rule ON consult_rules (rule_id, decided_at);
        CREATE TABLE rule_sets (
            version TEXT PRIMARY KEY,
            first_used BIGINT NOT NULL,
            files TEXT NOT NULL
        );",
    ),
    (
        "V2__feedback_forwarding_access",
        "ALTER TABLE consults ADD COLUMN forwarding TEXT;
        CREATE TABLE cds_cards (
            card_uuid TEXT PRIMARY KEY,
            consult_id TEXT NOT NULL,
            rule_id TEXT,
            service TEXT NOT NULL
        );
        CREATE INDEX cds_cards_consult ON cds_cards (consult_id);
        CREATE TABLE cds_feedback (
            id TEXT PRIMARY KEY,
            card_uuid TEXT NOT NULL,
            consult_id TEXT,
            rule_id TEXT,
            outcome TEXT NOT NULL,
            reason_code TEXT,
            reason_display TEXT,
            received_at BIGINT NOT NULL
        );
        CREATE INDEX cds_feedback_consult ON cds_feedback (consult_id);
        CREATE INDEX cds_feedback_rule ON cds_feedback (rule_id, outcome);
        CREATE TABLE access_log (
            id TEXT PRIMARY KEY,
            at BIGINT NOT NULL,
            who TEXT NOT NULL,
            what TEXT NOT NULL,
            consults TEXT NOT NULL
        );
        CREATE INDEX access_log_at ON access_log (at);",
    ),
    (
        "V3__cds_jti",
        "CREATE TABLE cds_jti (
            issuer TEXT NOT NULL,
            jti TEXT NOT NULL,
            expires BIGINT NOT NULL,
            PRIMARY KEY (issuer, jti)
        );
        CREATE INDEX cds_jti_expires ON cds_jti (expires);",
    ),
];

/// The refinery migrations, up to `version` (all of them when `None`).
pub fn migrations(version: Option<u32>) -> Vec<refinery::Migration> {
    MIGRATIONS
        .iter()
        .take(version.map_or(MIGRATIONS.len(), |v| v as usize))
        .map(|(name, sql)| {
            refinery::Migration::unapplied(name, sql)
                .unwrap_or_else(|e| unreachable!("migration {name} is malformed: {e}"))
        })
        .collect()
}

/// The columns of `consults`, in the order [`consult_from_row`] reads them.
const CONSULT_COLUMNS: &str = "id, received_at, decided_at, rule_set, client, channel, entry_index, hook_instance, request_hash, request_body, decision, http_status, summary, fired, shadow_fired, outcome, redirected, redirected_id, sr_reference, placer_identifier, subject_system, subject_value, requester_org, retry_key, latency_us, forwarding";

fn words(list: &[String]) -> String {
    list.join(" ")
}

fn unwords(text: Option<String>) -> Vec<String> {
    text.unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn consult_from_row(row: &Row) -> Result<Consult, StoreError> {
    let get = |i: usize| -> &SqlValue { &row[i] };
    let text = |i: usize| get(i).text().map(Option::unwrap_or_default);
    let int = |i: usize| get(i).int().map(Option::unwrap_or_default);
    if row.len() < 26 {
        return Err(StoreError::Corrupt(format!(
            "a consult row has {} columns",
            row.len()
        )));
    }
    Ok(Consult {
        id: text(0)?,
        received_at: int(1)?,
        decided_at: int(2)?,
        rule_set: text(3)?,
        client: text(4)?,
        channel: text(5)?,
        entry_index: get(6).int()?,
        hook_instance: get(7).text()?,
        request_hash: text(8)?,
        request_body: get(9).text()?,
        decision: text(10)?,
        http_status: int(11)?,
        summary: text(12)?,
        fired: unwords(get(13).text()?),
        shadow_fired: unwords(get(14).text()?),
        outcome: text(15)?,
        redirected: get(16).text()?,
        redirected_id: get(17).text()?,
        sr_reference: get(18).text()?,
        placer_identifier: get(19).text()?,
        subject_system: get(20).text()?,
        subject_value: get(21).text()?,
        requester_org: get(22).text()?,
        retry_key: get(23).text()?,
        latency_us: int(24)?,
        forwarding: get(25).text()?,
    })
}

/// What identifies a consult for `$stats`: a CDS Hooks order counts once per hookInstance
/// (order-select is called on every change of selection), anything else once.
fn count_key(c: &Consult) -> String {
    match (&c.hook_instance, c.entry_index) {
        (Some(h), Some(i)) => format!("{h}#{i}"),
        (Some(h), None) => h.clone(),
        _ => c.id.clone(),
    }
}

async fn insert_consult(db: &mut impl Db, c: &Consult) -> Result<String, StoreError> {
    let params: Vec<SqlValue> = vec![
        (&c.id).into(),
        c.received_at.into(),
        c.decided_at.into(),
        (&c.rule_set).into(),
        (&c.client).into(),
        (&c.channel).into(),
        c.entry_index.into(),
        (&c.hook_instance).into(),
        count_key(c).into(),
        (&c.request_hash).into(),
        (&c.request_body).into(),
        (&c.decision).into(),
        c.http_status.into(),
        (&c.summary).into(),
        words(&c.fired).into(),
        words(&c.shadow_fired).into(),
        (&c.outcome).into(),
        (&c.redirected).into(),
        (&c.redirected_id).into(),
        (&c.sr_reference).into(),
        (&c.placer_identifier).into(),
        (&c.subject_system).into(),
        (&c.subject_value).into(),
        (&c.requester_org).into(),
        (&c.retry_key).into(),
        c.latency_us.into(),
    ];
    let inserted = db
        .execute(
            "INSERT INTO consults (id, received_at, decided_at, rule_set, client, channel, entry_index, hook_instance, count_key, request_hash, request_body, decision, http_status, summary, fired, shadow_fired, outcome, redirected, redirected_id, sr_reference, placer_identifier, subject_system, subject_value, requester_org, retry_key, latency_us)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (retry_key) DO NOTHING",
            &params,
        )
        .await?;
    if inserted == 0 {
        // A retry: the consult is the one first recorded for this request.
        if let Some(key) = &c.retry_key {
            let rows = db
                .query("SELECT id FROM consults WHERE retry_key = ?", &[key.into()])
                .await?;
            if let Some(id) = rows.first().and_then(|r| r[0].text().ok().flatten()) {
                return Ok(id);
            }
        }
        return Err(StoreError::Corrupt(format!(
            "consult {} was neither inserted nor found",
            c.id
        )));
    }
    for (mode, ids) in [("fired", &c.fired), ("shadow", &c.shadow_fired)] {
        let mut seen: Vec<&String> = Vec::new();
        for rule in ids.iter() {
            if seen.contains(&rule) {
                continue;
            }
            seen.push(rule);
            db.execute(
                "INSERT INTO consult_rules (consult_id, rule_id, mode, decided_at) VALUES (?, ?, ?, ?)",
                &[(&c.id).into(), rule.into(), mode.into(), c.decided_at.into()],
            )
            .await?;
        }
    }
    Ok(c.id.clone())
}

async fn insert_cards(db: &mut impl Db, cards: &[CardLink]) -> Result<u64, StoreError> {
    let mut rows = 0;
    for card in cards {
        rows += db
            .execute(
                "INSERT INTO cds_cards (card_uuid, consult_id, rule_id, service) VALUES (?, ?, ?, ?) ON CONFLICT (card_uuid) DO NOTHING",
                &[(&card.card_uuid).into(), (&card.consult_id).into(), (&card.rule_id).into(), (&card.service).into()],
            )
            .await?;
    }
    Ok(rows)
}

/// Applies one write inside the caller's transaction.
pub async fn apply(db: &mut impl Db, write: &Write) -> Result<Written, StoreError> {
    let mut out = Written::default();
    match write {
        Write::Consults(consults) => {
            for c in consults {
                out.ids.push(insert_consult(db, c).await?);
            }
            out.rows = out.ids.len() as u64;
        }
        Write::RuleSet(rs) => {
            out.rows = db
                .execute(
                    "INSERT INTO rule_sets (version, first_used, files) VALUES (?, ?, ?) ON CONFLICT (version) DO NOTHING",
                    &[(&rs.version).into(), super::now_us().into(), (&rs.files).into()],
                )
                .await?;
        }
        Write::Cds { consults, cards } => {
            for c in consults {
                out.ids.push(insert_consult(db, c).await?);
            }
            out.rows = insert_cards(db, cards).await?;
        }
        Write::Cards(cards) => {
            out.rows = insert_cards(db, cards).await?;
        }
        Write::Feedback(items) => {
            for f in items {
                out.rows += db
                    .execute(
                        "INSERT INTO cds_feedback (id, card_uuid, consult_id, rule_id, outcome, reason_code, reason_display, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        &[
                            (&f.id).into(),
                            (&f.card_uuid).into(),
                            (&f.consult_id).into(),
                            (&f.rule_id).into(),
                            (&f.outcome).into(),
                            (&f.reason_code).into(),
                            (&f.reason_display).into(),
                            f.received_at.into(),
                        ],
                    )
                    .await?;
            }
        }
        Write::Access(a) => {
            out.rows = db
                .execute(
                    "INSERT INTO access_log (id, at, who, what, consults) VALUES (?, ?, ?, ?, ?)",
                    &[
                        (&a.id).into(),
                        a.at.into(),
                        (&a.who).into(),
                        (&a.what).into(),
                        a.consults.join(" ").into(),
                    ],
                )
                .await?;
        }
        Write::Purge { before } => {
            let b: SqlValue = (*before).into();
            db.execute(
                "DELETE FROM cds_feedback WHERE consult_id IN (SELECT id FROM consults WHERE decided_at < ?)",
                std::slice::from_ref(&b),
            )
            .await?;
            db.execute(
                "DELETE FROM cds_cards WHERE consult_id IN (SELECT id FROM consults WHERE decided_at < ?)",
                std::slice::from_ref(&b),
            )
            .await?;
            db.execute(
                "DELETE FROM consult_rules WHERE decided_at < ?",
                std::slice::from_ref(&b),
            )
            .await?;
            out.rows = db
                .execute(
                    "DELETE FROM consults WHERE decided_at < ?",
                    std::slice::from_ref(&b),
                )
                .await?;
            db.execute("DELETE FROM access_log WHERE at < ?", &[b])
                .await?;
        }
        Write::Jti {
            issuer,
            jti,
            expires,
            now,
            purge,
        } => {
            if *purge {
                db.execute("DELETE FROM cds_jti WHERE expires < ?", &[(*now).into()])
                    .await?;
            }
            // A row whose token has expired may be taken again (the token itself is refused as
            // expired before it gets here); one still valid is a replay: nothing changes.
            out.rows = db
                .execute(
                    "INSERT INTO cds_jti (issuer, jti, expires) VALUES (?, ?, ?) ON CONFLICT (issuer, jti) DO UPDATE SET expires = excluded.expires WHERE cds_jti.expires < ?",
                    &[issuer.into(), jti.into(), (*expires).into(), (*now).into()],
                )
                .await?;
        }
        Write::Forwarding(results) => {
            for (consult_id, result) in results {
                out.rows += db
                    .execute(
                        "UPDATE consults SET forwarding = ? WHERE id = ?",
                        &[result.into(), consult_id.into()],
                    )
                    .await?;
            }
        }
    }
    Ok(out)
}

pub async fn get(db: &mut impl Db, id: &str) -> Result<Option<Consult>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {CONSULT_COLUMNS} FROM consults WHERE id = ?"),
            &[id.into()],
        )
        .await?;
    rows.first().map(consult_from_row).transpose()
}

pub async fn by_redirected(db: &mut impl Db, sr_id: &str) -> Result<Vec<Consult>, StoreError> {
    let rows = db
        .query(
            &format!("SELECT {CONSULT_COLUMNS} FROM consults WHERE redirected_id = ? ORDER BY decided_at, id"),
            &[sr_id.into()],
        )
        .await?;
    rows.iter().map(consult_from_row).collect()
}

/// The WHERE clause (and its parameters) of a search, without paging.
fn filter(q: &ConsultQuery) -> (String, Vec<SqlValue>) {
    let mut conds: Vec<&str> = Vec::new();
    let mut params: Vec<SqlValue> = Vec::new();
    if let Some(t) = q.since {
        conds.push("decided_at >= ?");
        params.push(t.into());
    }
    if let Some(t) = q.until {
        conds.push("decided_at < ?");
        params.push(t.into());
    }
    if let Some(d) = &q.decision {
        conds.push("decision = ?");
        params.push(d.into());
    }
    match q.outcome.as_deref() {
        Some("4") => conds.push("decision = 'rejected'"),
        Some("0") => conds.push("decision <> 'rejected'"),
        Some(_) => conds.push("1 = 0"),
        None => {}
    }
    if let Some(c) = &q.client {
        conds.push("client = ?");
        params.push(c.into());
    }
    if let Some(v) = &q.subject_value {
        conds.push("subject_value = ?");
        params.push(v.into());
    }
    if let Some(s) = &q.subject_system {
        conds.push("subject_system = ?");
        params.push(s.into());
    }
    if let Some(o) = &q.requester_org {
        conds.push("requester_org = ?");
        params.push(o.into());
    }
    if let Some(p) = &q.entity_identifier {
        if p.contains('|') {
            conds.push("placer_identifier = ?");
            params.push(p.into());
        } else {
            conds.push("(placer_identifier = ? OR placer_identifier LIKE ? OR sr_reference = ? OR redirected_id = ?)");
            params.push(p.into());
            params.push(format!("%|{}", p.replace(['%', '_'], "")).into());
            params.push(p.into());
            params.push(p.into());
        }
    }
    if let Some(r) = &q.rule {
        conds.push("EXISTS (SELECT 1 FROM consult_rules r WHERE r.consult_id = consults.id AND r.rule_id = ? AND r.mode = 'fired')");
        params.push(r.into());
    }
    if let Some(r) = &q.shadow_rule {
        conds.push("EXISTS (SELECT 1 FROM consult_rules r WHERE r.consult_id = consults.id AND r.rule_id = ? AND r.mode = 'shadow')");
        params.push(r.into());
    }
    let clause = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    (clause, params)
}

pub async fn search(db: &mut impl Db, q: &ConsultQuery) -> Result<Page, StoreError> {
    let (mut clause, mut params) = filter(q);
    // Keyset paging on (decided_at, id): a page never shifts when consults are added.
    if let Some((t, id)) = &q.after {
        let cmp = if q.newest_first { "<" } else { ">" };
        clause.push_str(if clause.is_empty() {
            " WHERE "
        } else {
            " AND "
        });
        clause.push_str(&format!(
            "(decided_at {cmp} ? OR (decided_at = ? AND id {cmp} ?))"
        ));
        params.push((*t).into());
        params.push((*t).into());
        params.push(id.into());
    }
    let order = if q.newest_first { "DESC" } else { "ASC" };
    let count = q.count.clamp(1, 1000);
    params.push(((count + 1) as i64).into());
    let rows = db
        .query(
            &format!("SELECT {CONSULT_COLUMNS} FROM consults{clause} ORDER BY decided_at {order}, id {order} LIMIT ?"),
            &params,
        )
        .await?;
    let mut consults = rows
        .iter()
        .map(consult_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let next = if consults.len() > count {
        consults.truncate(count);
        consults.last().map(|c| (c.decided_at, c.id.clone()))
    } else {
        None
    };
    Ok(Page { consults, next })
}

fn pairs(rows: Vec<Row>) -> Result<Vec<(String, i64)>, StoreError> {
    rows.iter()
        .map(|r| {
            Ok((
                r[0].text()?.unwrap_or_default(),
                r[1].int()?.unwrap_or_default(),
            ))
        })
        .collect()
}

pub async fn stats(
    db: &mut impl Db,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<Stats, StoreError> {
    let q = ConsultQuery {
        since,
        until,
        ..Default::default()
    };
    let (clause, params) = filter(&q);
    let mut stats = Stats::default();
    let total = db
        .query(
            &format!("SELECT COUNT(DISTINCT count_key) FROM consults{clause}"),
            &params,
        )
        .await?;
    stats.total = total
        .first()
        .and_then(|r| r[0].int().ok().flatten())
        .unwrap_or(0);
    stats.decisions = pairs(
        db.query(
            &format!("SELECT decision, COUNT(DISTINCT count_key) FROM consults{clause} GROUP BY decision ORDER BY decision"),
            &params,
        )
        .await?,
    )?;
    stats.clients = pairs(
        db.query(
            &format!("SELECT client, COUNT(DISTINCT count_key) FROM consults{clause} GROUP BY client ORDER BY client"),
            &params,
        )
        .await?,
    )?;
    // Rule rows carry the decision time: counted from the rule index alone.
    let mut rule_conds = Vec::new();
    let mut rule_params = Vec::new();
    if let Some(t) = since {
        rule_conds.push("r.decided_at >= ?");
        rule_params.push(SqlValue::from(t));
    }
    if let Some(t) = until {
        rule_conds.push("r.decided_at < ?");
        rule_params.push(SqlValue::from(t));
    }
    let rule_where = if rule_conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", rule_conds.join(" AND "))
    };
    let rows = db
        .query(
            &format!("SELECT r.rule_id, r.mode, COUNT(DISTINCT c.count_key) FROM consult_rules r JOIN consults c ON c.id = r.consult_id{rule_where} GROUP BY r.rule_id, r.mode ORDER BY r.rule_id"),
            &rule_params,
        )
        .await?;
    for r in &rows {
        let id = r[0].text()?.unwrap_or_default();
        let mode = r[1].text()?.unwrap_or_default();
        let n = r[2].int()?.unwrap_or_default();
        let entry = rule_stats(&mut stats.rules, &id);
        if mode == "shadow" {
            entry.shadow_fired = n;
        } else {
            entry.fired = n;
        }
    }
    let mut fb_conds = vec!["f.outcome = 'overridden'"];
    let mut fb_params = Vec::new();
    if let Some(t) = since {
        fb_conds.push("c.decided_at >= ?");
        fb_params.push(SqlValue::from(t));
    }
    if let Some(t) = until {
        fb_conds.push("c.decided_at < ?");
        fb_params.push(SqlValue::from(t));
    }
    let rows = db
        .query(
            &format!("SELECT f.rule_id, COALESCE(f.reason_code, ''), COUNT(*) FROM cds_feedback f JOIN consults c ON c.id = f.consult_id WHERE {} AND f.rule_id IS NOT NULL GROUP BY f.rule_id, COALESCE(f.reason_code, '') ORDER BY f.rule_id", fb_conds.join(" AND ")),
            &fb_params,
        )
        .await?;
    for r in &rows {
        let id = r[0].text()?.unwrap_or_default();
        let reason = r[1].text()?.unwrap_or_default();
        let n = r[2].int()?.unwrap_or_default();
        let entry = rule_stats(&mut stats.rules, &id);
        entry.overridden += n;
        if !reason.is_empty() {
            entry.override_reasons.push((reason, n));
        }
    }
    stats.rules.sort_by(|a, b| a.id.cmp(&b.id));
    // Percentiles by rank: the n-th latency in order, found by the database.
    let n: i64 = db
        .query(&format!("SELECT COUNT(*) FROM consults{clause}"), &params)
        .await?
        .first()
        .and_then(|r| r[0].int().ok().flatten())
        .unwrap_or(0);
    if n > 0 {
        for (p, slot) in [(50, &mut stats.p50_us), (99, &mut stats.p99_us)] {
            let rank = ((n * p + 99) / 100).clamp(1, n) - 1;
            let mut ps = params.clone();
            ps.push(rank.into());
            *slot = db
                .query(
                    &format!("SELECT latency_us FROM consults{clause} ORDER BY latency_us LIMIT 1 OFFSET ?"),
                    &ps,
                )
                .await?
                .first()
                .and_then(|r| r[0].int().ok().flatten());
        }
    }
    Ok(stats)
}

pub async fn timeline(
    db: &mut impl Db,
    since: i64,
    until: i64,
    bucket_us: i64,
) -> Result<Vec<TimeCount>, StoreError> {
    let rows = db
        .query(
            "SELECT (decided_at - ?) / ?, decision, COUNT(DISTINCT count_key) FROM consults WHERE decided_at >= ? AND decided_at < ? GROUP BY 1, 2 ORDER BY 1, 2",
            &[since.into(), bucket_us.max(1).into(), since.into(), until.into()],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(TimeCount {
                bucket: r[0].int()?.unwrap_or_default(),
                decision: r[1].text()?.unwrap_or_default(),
                count: r[2].int()?.unwrap_or_default(),
            })
        })
        .collect()
}

pub async fn feedback(
    db: &mut impl Db,
    consult_id: &str,
) -> Result<Vec<FeedbackRecord>, StoreError> {
    let rows = db
        .query(
            "SELECT id, card_uuid, consult_id, rule_id, outcome, reason_code, reason_display, received_at FROM cds_feedback WHERE consult_id = ? ORDER BY received_at, id",
            &[consult_id.into()],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(FeedbackRecord {
                id: r[0].text()?.unwrap_or_default(),
                card_uuid: r[1].text()?.unwrap_or_default(),
                consult_id: r[2].text()?,
                rule_id: r[3].text()?,
                outcome: r[4].text()?.unwrap_or_default(),
                reason_code: r[5].text()?,
                reason_display: r[6].text()?,
                received_at: r[7].int()?.unwrap_or_default(),
            })
        })
        .collect()
}

pub async fn card(db: &mut impl Db, card_uuid: &str) -> Result<Option<CardLink>, StoreError> {
    let rows = db
        .query(
            "SELECT card_uuid, consult_id, rule_id, service FROM cds_cards WHERE card_uuid = ?",
            &[card_uuid.into()],
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok(CardLink {
                card_uuid: r[0].text()?.unwrap_or_default(),
                consult_id: r[1].text()?.unwrap_or_default(),
                rule_id: r[2].text()?,
                service: r[3].text()?.unwrap_or_default(),
            })
        })
        .transpose()
}

pub async fn rule_set(db: &mut impl Db, version: &str) -> Result<Option<String>, StoreError> {
    let rows = db
        .query(
            "SELECT files FROM rule_sets WHERE version = ?",
            &[version.into()],
        )
        .await?;
    Ok(rows.first().and_then(|r| r[0].text().ok().flatten()))
}

/// A cheap statement that needs the database to answer (readiness of reads).
pub async fn ping(db: &mut impl Db) -> Result<(), StoreError> {
    db.query("SELECT COUNT(*) FROM rule_sets", &[]).await?;
    Ok(())
}

/// The figures of rule `id`, added (zeroed) the first time a query names it.
fn rule_stats<'a>(rules: &'a mut Vec<RuleStats>, id: &str) -> &'a mut RuleStats {
    let i = match rules.iter().position(|s| s.id == id) {
        Some(i) => i,
        None => {
            rules.push(RuleStats {
                id: id.to_string(),
                ..Default::default()
            });
            rules.len() - 1
        }
    };
    &mut rules[i]
}
