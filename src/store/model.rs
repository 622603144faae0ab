//! What the store keeps, as Rust values.

/// One decided ServiceRequest (contract §6 "What a consult records"). Times are microseconds
/// since the Unix epoch (UTC).
#[derive(Debug, Clone, PartialEq)]
pub struct Consult {
    /// UUID v7, written bare.
    pub id: String,
    pub received_at: i64,
    pub decided_at: i64,
    /// The rule-set version (content hash of rules and profiles) it was decided under.
    pub rule_set: String,
    /// Who asked: the authenticated client, else the peer address.
    pub client: String,
    /// `rest`, `batch`, `transaction` or `cds-hooks`.
    pub channel: String,
    /// The entry's index in a batch or transaction Bundle (the draft's index for CDS Hooks).
    pub entry_index: Option<i64>,
    /// The CDS Hooks `hookInstance` and hook (`order-sign/UUID`), for CDS consults.
    pub hook_instance: Option<String>,
    /// SHA-256 (hex) of the ServiceRequest as received.
    pub request_hash: String,
    /// The ServiceRequest as received (JSON), unless `--audit-body hash`.
    pub request_body: Option<String>,
    /// `accepted`, `rejected` or `redirected`.
    pub decision: String,
    /// The HTTP status the decision maps to (200, 422, 400).
    pub http_status: i64,
    /// One line: what was decided and why.
    pub summary: String,
    /// Rules that fired and decided (enforce and advise), in rule order.
    pub fired: Vec<String>,
    /// Shadow rules that would have fired.
    pub shadow_fired: Vec<String>,
    /// The full OperationOutcome of the decision (JSON), shadow findings included.
    pub outcome: String,
    /// The redirected ServiceRequest (JSON), when redirected.
    pub redirected: Option<String>,
    /// Its id.
    pub redirected_id: Option<String>,
    /// How the original ServiceRequest was named: `ServiceRequest/id` or its `fullUrl`.
    pub sr_reference: Option<String>,
    /// The placer's identifier of the request (`system|value`).
    pub placer_identifier: Option<String>,
    /// The patient's identifier (NHS number first), as system and value.
    pub subject_system: Option<String>,
    pub subject_value: Option<String>,
    /// The requesting organisation's identifier (ODS code first).
    pub requester_org: Option<String>,
    /// Set when a retry of this request must map to this consult (client, placer identifier
    /// or `If-None-Exist`, and the request's hash).
    pub retry_key: Option<String>,
    /// From receiving the request to the decision, in microseconds.
    pub latency_us: i64,
    /// What the upstream answered when the request was forwarded (§7), JSON.
    pub forwarding: Option<String>,
}

/// The rule-set version and its files, kept so that an old consult can be explained again.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSetRecord {
    pub version: String,
    /// JSON `{"rules": {path: text}, "profiles": {path: text}}`.
    pub files: String,
}

/// A CDS Hooks card and the consult it was issued for.
#[derive(Debug, Clone, PartialEq)]
pub struct CardLink {
    pub card_uuid: String,
    pub consult_id: String,
    pub rule_id: Option<String>,
    pub service: String,
}

/// One CDS Hooks feedback item, against its card's consult.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackRecord {
    pub id: String,
    pub card_uuid: String,
    pub consult_id: Option<String>,
    pub rule_id: Option<String>,
    /// `accepted` or `overridden`.
    pub outcome: String,
    pub reason_code: Option<String>,
    pub reason_display: Option<String>,
    pub received_at: i64,
}

/// Someone read consults (reading patient data is itself recorded).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRecord {
    pub id: String,
    pub at: i64,
    pub who: String,
    /// What was asked (`GET /AuditEvent?...`).
    pub what: String,
    /// The consult ids returned.
    pub consults: Vec<String>,
}

/// One write to the store; each is committed whole.
#[derive(Debug, Clone)]
pub enum Write {
    /// The consults of one request.
    Consults(Vec<Consult>),
    /// The consults of one CDS Hooks call, and the cards issued about them.
    Cds {
        consults: Vec<Consult>,
        cards: Vec<CardLink>,
    },
    RuleSet(RuleSetRecord),
    Cards(Vec<CardLink>),
    Feedback(Vec<FeedbackRecord>),
    Access(AccessRecord),
    /// Deletes every consult decided before this time (retention), with its rule rows, cards
    /// and feedback.
    Purge {
        before: i64,
    },
    /// Records what the upstream answered for consults (those of one request): consult id,
    /// and the result as JSON.
    Forwarding(Vec<(String, String)>),
    /// The `jti` of a CDS Hooks JWT (contract §8), kept until `expires` (Unix seconds) so that
    /// a replay to any replica sharing the store is refused: [`Written::rows`] is 1 on its
    /// first use, 0 for a replay. With `purge`, first deletes the jtis expired before `now`.
    Jti {
        issuer: String,
        jti: String,
        expires: i64,
        now: i64,
        purge: bool,
    },
}

/// What a committed write did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Written {
    /// For [`Write::Consults`]: each consult's id, in order. A retried request gets the id of
    /// the consult first recorded for it.
    pub ids: Vec<String>,
    /// Rows deleted ([`Write::Purge`]) or changed.
    pub rows: u64,
}

/// `GET /AuditEvent?...`, parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsultQuery {
    /// Decided at or after (µs).
    pub since: Option<i64>,
    /// Decided before (µs).
    pub until: Option<i64>,
    pub decision: Option<String>,
    /// AuditEvent outcome: `0` (accepted or redirected) or `4` (rejected).
    pub outcome: Option<String>,
    pub rule: Option<String>,
    /// A shadow rule that would have fired (the console's "would-be decisions").
    pub shadow_rule: Option<String>,
    pub client: Option<String>,
    pub subject_system: Option<String>,
    pub subject_value: Option<String>,
    pub requester_org: Option<String>,
    /// The request's placer identifier (`system|value`, or a value alone).
    pub entity_identifier: Option<String>,
    /// Newest first (`_sort=-date`, the default) or oldest first (`_sort=date`).
    pub newest_first: bool,
    pub count: usize,
    /// Where the previous page ended: `(decided_at, id)` of its last consult.
    pub after: Option<(i64, String)>,
}

/// One page of a search.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub consults: Vec<Consult>,
    /// Set when there are more: `(decided_at, id)` of the last consult of this page.
    pub next: Option<(i64, String)>,
}

/// `GET /$stats`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub total: i64,
    /// decision → consults.
    pub decisions: Vec<(String, i64)>,
    pub rules: Vec<RuleStats>,
    /// client → consults.
    pub clients: Vec<(String, i64)>,
    /// Decision latency percentiles, in microseconds.
    pub p50_us: Option<i64>,
    pub p99_us: Option<i64>,
}

/// Consults per time bucket and decision (the console's "consults over time").
#[derive(Debug, Clone, PartialEq)]
pub struct TimeCount {
    /// The bucket's index from the start of the period (0 is the first bucket).
    pub bucket: i64,
    pub decision: String,
    /// Consults, each counted once (a CDS Hooks order once per hookInstance, as in `$stats`).
    pub count: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleStats {
    pub id: String,
    pub fired: i64,
    pub shadow_fired: i64,
    pub overridden: i64,
    /// override reason → times.
    pub override_reasons: Vec<(String, i64)>,
}
