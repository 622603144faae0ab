//! The one engine service every front end calls: the compiled rule set (swapped whole on
//! reload), the slots that bound the decisions running at once, the parse limits, and the
//! decision sinks that see every decision before its answer is sent.
//!
//! A front end turns its protocol into a [`Call`] and passes a `translate` function that turns
//! the engine's result into its own answer (an OperationOutcome, CDS cards, an exit status).
//! [`Engine::decide`] takes a slot, runs the decision and `translate` on the blocking pool,
//! turns a panic into [`EngineError::Failed`], times the decision, then awaits every sink in
//! order. A sink that fails stops the answer: the front end answers 503 and nothing is said to
//! the client that was not recorded.
//!
//! Consult ids (contract §6): the engine gives every decided ServiceRequest of a call a fresh
//! UUID v7 in [`DecisionRecord::consult_ids`] before any sink sees it, so that every sink names
//! a consult alike. A sink that keeps consults (the consult store) answers
//! [`Kept::Recorded`] with the ids under which they are now committed: the fresh ones, or for
//! a retried request the id of the consult first recorded for it. Those ids come back in
//! [`Answered::consult_ids`], and the front end writes them onto its answer after `decide`
//! returns (`translate` built the answer before anything was committed). Without a recording
//! sink they are empty: an answer never names a consult that was not recorded.

use super::{check_with_progress, Checked, OnProgress};
use crate::load::{LoadError, RuleSource};
use crate::parse::{Format, Limits, Unusable};
use crate::rules::RuleSet;
use arc_swap::ArcSwap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Semaphore;

/// Which front end made a call. Sinks use it for labels (metrics) and for the record (the
/// consult store). Routes are the router's patterns, never the path as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A FHIR REST endpoint, e.g. `/ServiceRequest`, `/`, `/$validate`.
    Fhir { route: String },
    /// A CDS Hooks service call (`/cds-services/{id}`) of the service `service`, as
    /// `hook/hookInstance` (the consult's channel; `$stats` counts a draft once per instance).
    CdsHooks {
        route: String,
        service: String,
        hook_instance: String,
    },
    /// `referral-gateway check`.
    Cli,
}

impl Caller {
    /// The route label: the router's pattern, or `cli`.
    pub fn route(&self) -> &str {
        match self {
            Caller::Fhir { route } | Caller::CdsHooks { route, .. } => route,
            Caller::Cli => "cli",
        }
    }
}

/// Whether a call places orders or only asks what the gateway would say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Orders placed (`POST /ServiceRequest`, `POST /`, a CDS Hooks call, `check`): each
    /// decided ServiceRequest is a consult and gets a consult id (contract §6).
    Order,
    /// A what-if question (`$validate`, `$explain`): decided and counted, never recorded, so
    /// no consult ids.
    WhatIf,
}

/// Who asked, as the consult record keeps it (contract §6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Asker {
    /// The authenticated client (§8) when a token was given, else the client's address.
    pub client: String,
    /// The caller's `If-None-Exist`: a retry with the same one is the same consult.
    pub if_none_exist: Option<String>,
}

/// One call of the engine: the bytes to decide on and the rules to decide them with.
#[derive(Debug, Clone)]
pub struct Call {
    pub caller: Caller,
    pub purpose: Purpose,
    pub asker: Asker,
    pub bytes: bytes::Bytes,
    pub format: Format,
    /// Profiles asked for besides the enforced and declared ones (`$validate?profile=`).
    pub profiles: Vec<String>,
    /// The rules in force when the request started: it finishes on them even if a reload
    /// happens meanwhile ([`Engine::rules`]).
    pub rules: Arc<RuleSet>,
}

/// A decided call, as every sink sees it.
#[derive(Debug)]
pub struct DecisionRecord {
    pub caller: Caller,
    pub purpose: Purpose,
    pub asker: Asker,
    /// The body as sent (the consult keeps its hash, and unless told otherwise the request).
    pub bytes: bytes::Bytes,
    /// The rules it was decided with.
    pub rules: Arc<RuleSet>,
    /// The input and the decision on each of its entries.
    pub checked: Checked,
    /// One fresh consult id (UUID v7, bare) per decided ServiceRequest, in the order of
    /// [`Checked::requests`]; none for a [`Purpose::WhatIf`] call.
    pub consult_ids: Vec<String>,
    /// When the engine was called.
    pub received: SystemTime,
    /// Time spent deciding and translating (on the blocking pool).
    pub elapsed: Duration,
}

/// What a sink did with a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// Looked at it (counted, logged): nothing anyone can read back by id.
    Seen,
    /// Committed it durably: one consult id per decided ServiceRequest, in order. Each is the
    /// record's fresh id, or the id of the consult a retried request was first recorded as.
    Recorded(Vec<String>),
}

/// A sink's failure: the answer is not sent (the front end says 503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{sink}: {message}")]
pub struct SinkError {
    pub sink: &'static str,
    pub message: String,
}

/// What [`DecisionSink::record`] returns: a sink may do I/O (a database commit).
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<Kept, SinkError>> + Send + 'a>>;

/// What happens after a decision: counting it (metrics), recording it (the consult store).
/// Sinks are awaited in the order they were added, before the answer is sent; the first that
/// fails stops the rest and the answer. Add sinks that must commit (a store) before sinks that
/// only observe (metrics), so that nothing is counted that was not answered. A sink that
/// records consults returns [`Kept::Recorded`]; the ids it returns are the ones the answer
/// carries (the last recording sink's, should there be several).
pub trait DecisionSink: Send + Sync {
    /// A short name for logs and errors (`metrics`, `store`).
    fn name(&self) -> &'static str;
    /// Takes one decided call. Must not log patient data.
    fn record<'a>(&'a self, record: &'a DecisionRecord) -> SinkFuture<'a>;
}

/// Why a call has no answer of its front end's.
#[derive(Debug, thiserror::Error)]
pub enum EngineError<E> {
    /// The front end refused the result (e.g. a Bundle sent to `POST /ServiceRequest`).
    #[error("{0}")]
    FrontEnd(E),
    /// The engine is shutting down: no slot.
    #[error("the decision engine is closed")]
    Closed,
    /// The engine failed (panicked) on this input; the server goes on.
    #[error("the decision engine failed: {0}")]
    Failed(String),
    /// A sink could not take the decision: the answer must not be sent (503).
    #[error("the decision could not be recorded: {0}")]
    Sink(SinkError),
}

/// A front end's answer with the decided call it came from (`None` when the input could not
/// be decided, e.g. malformed JSON: sinks were not called).
#[derive(Debug)]
pub struct Answered<T> {
    pub answer: T,
    pub record: Option<Arc<DecisionRecord>>,
    /// The consult ids to write on the answer, one per decided ServiceRequest in order, as a
    /// recording sink kept them; empty when no sink records consults.
    pub consult_ids: Vec<String>,
}

/// The engine service. One per process; front ends hold it (the HTTP server in its state).
pub struct Engine {
    rules: ArcSwap<RuleSet>,
    source: RuleSource,
    limits: Limits,
    slots: Arc<Semaphore>,
    sinks: Vec<Arc<dyn DecisionSink>>,
    /// Told how far each call has got (`check` on a terminal); none for `serve`.
    progress: Option<Arc<OnProgress>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("source", &self.source)
            .field("limits", &self.limits)
            .field("slots", &self.slots.available_permits())
            .field(
                "sinks",
                &self.sinks.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Engine {
    /// An engine on `rules` (loaded from `source`, which reloads read again), deciding at most
    /// `max_concurrent` calls at once (0: four per core).
    pub fn new(rules: RuleSet, source: RuleSource, limits: Limits, max_concurrent: usize) -> Self {
        let slots = match max_concurrent {
            0 => 4 * std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        Self {
            rules: ArcSwap::from_pointee(rules),
            source,
            limits,
            slots: Arc::new(Semaphore::new(slots)),
            sinks: Vec::new(),
            progress: None,
        }
    }

    /// Tells `progress` how far each call has got.
    pub fn with_progress(mut self, progress: Arc<OnProgress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Adds a sink, called after those added before it.
    pub fn with_sink(mut self, sink: Arc<dyn DecisionSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// The rules in force now: a request takes them once, at its start.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.load_full()
    }

    pub fn source(&self) -> &RuleSource {
        &self.source
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Reads and compiles the rules again (on the blocking pool) and, when they load, puts
    /// them in force: calls already running finish on the rules they started with. When they
    /// do not load, the old rules stay. Returns the number of rules now in force.
    pub async fn reload(&self) -> Result<usize, Vec<LoadError>> {
        let source = self.source.clone();
        let loaded = tokio::task::spawn_blocking(move || RuleSet::from_source(&source))
            .await
            .map_err(|e| {
                vec![LoadError::new(
                    "(reload)",
                    format!("the reload failed: {e}"),
                )]
            })?;
        let rules = loaded?;
        let count = rules.rules.len();
        self.rules.store(Arc::new(rules));
        Ok(count)
    }

    /// Decides `call` on the blocking pool, behind a slot, and has `translate` turn the result
    /// into the front end's answer there. When the input was decided and `translate` accepted
    /// it, every sink takes the decision before this returns.
    pub async fn decide<T, E, F>(
        &self,
        call: Call,
        translate: F,
    ) -> Result<Answered<T>, EngineError<E>>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce(Result<&Checked, &Unusable>, &RuleSet) -> Result<T, E> + Send + 'static,
    {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| EngineError::Closed)?;
        let limits = self.limits;
        let progress = self.progress.clone();
        let done = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            run(call, &limits, progress.as_deref(), translate)
        })
        .await;
        let (answer, record) = match done {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => return Err(EngineError::FrontEnd(e)),
            Err(e) => return Err(EngineError::Failed(e.to_string())),
        };
        let record = record.map(Arc::new);
        let consult_ids = match &record {
            Some(r) => self.send_to_sinks(r).await.map_err(EngineError::Sink)?,
            None => Vec::new(),
        };
        Ok(Answered {
            answer,
            record,
            consult_ids,
        })
    }

    /// [`Engine::decide`] for a front end without an async runtime (the CLI): the same
    /// decision and sinks, on the calling thread, with no slot.
    pub fn decide_blocking<T, E, F>(
        &self,
        call: Call,
        translate: F,
    ) -> Result<Answered<T>, EngineError<E>>
    where
        F: FnOnce(Result<&Checked, &Unusable>, &RuleSet) -> Result<T, E>,
    {
        let (answer, record) = run(call, &self.limits, self.progress.as_deref(), translate)
            .map_err(EngineError::FrontEnd)?;
        let record = record.map(Arc::new);
        let consult_ids = match &record {
            Some(r) => {
                futures_executor::block_on(self.send_to_sinks(r)).map_err(EngineError::Sink)?
            }
            None => Vec::new(),
        };
        Ok(Answered {
            answer,
            record,
            consult_ids,
        })
    }

    /// Every sink in order; the consult ids the last recording sink kept.
    async fn send_to_sinks(&self, record: &DecisionRecord) -> Result<Vec<String>, SinkError> {
        let mut kept = Vec::new();
        for sink in &self.sinks {
            match sink.record(record).await {
                Ok(Kept::Seen) => {}
                Ok(Kept::Recorded(ids)) => kept = ids,
                Err(e) => {
                    tracing::error!(sink = sink.name(), error = %e, "a decision sink failed: the answer is not sent");
                    return Err(e);
                }
            }
        }
        Ok(kept)
    }
}

/// The decision and the front end's translation of it, timed.
fn run<T, E, F>(
    call: Call,
    limits: &Limits,
    progress: Option<&OnProgress>,
    translate: F,
) -> Result<(T, Option<DecisionRecord>), E>
where
    F: FnOnce(Result<&Checked, &Unusable>, &RuleSet) -> Result<T, E>,
{
    let start = Instant::now();
    let received = SystemTime::now();
    let Call {
        caller,
        purpose,
        asker,
        bytes,
        format,
        profiles,
        rules,
    } = call;
    let result = check_with_progress(
        &rules,
        &bytes,
        format,
        limits,
        &profiles,
        progress.unwrap_or(&|_| {}),
    );
    let answer = translate(result.as_ref(), &rules)?;
    let record = result.ok().map(|checked| DecisionRecord {
        caller,
        purpose,
        asker,
        bytes,
        consult_ids: match purpose {
            Purpose::Order => checked
                .requests()
                .map(|_| uuid::Uuid::now_v7().to_string())
                .collect(),
            Purpose::WhatIf => Vec::new(),
        },
        checked,
        rules: rules.clone(),
        received,
        elapsed: start.elapsed(),
    });
    Ok((answer, record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Decision;
    use std::sync::Mutex;

    fn engine() -> Engine {
        let source = RuleSource::dir_only(crate::load::default_rules_dir());
        Engine::new(
            RuleSet::from_source(&source).expect("the shipped rules load"),
            source,
            Limits::default(),
            1,
        )
    }

    fn call(engine: &Engine, body: &str) -> Call {
        Call {
            caller: Caller::Fhir {
                route: "/ServiceRequest".into(),
            },
            purpose: Purpose::Order,
            asker: Asker::default(),
            bytes: bytes::Bytes::copy_from_slice(body.as_bytes()),
            format: Format::Json,
            profiles: Vec::new(),
            rules: engine.rules(),
        }
    }

    const ACCEPTED: &str = r#"{"resourceType":"ServiceRequest","status":"active","intent":"order","subject":{"display":"x"},"code":{"text":"ultrasound abdomen"},"reasonCode":[{"text":"right upper quadrant pain, ?gallstones"}]}"#;

    /// Keeps what it was given, or fails.
    struct Recorder {
        seen: Mutex<Vec<(String, Vec<Decision>)>>,
        fail: bool,
    }

    impl DecisionSink for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn record<'a>(&'a self, record: &'a DecisionRecord) -> SinkFuture<'a> {
            Box::pin(async move {
                // A sink may await I/O before it answers.
                tokio::task::yield_now().await;
                if self.fail {
                    return Err(SinkError {
                        sink: "recorder",
                        message: "the store is down".into(),
                    });
                }
                self.seen.lock().expect("lock").push((
                    record.caller.route().to_string(),
                    record.checked.requests().map(|r| r.decision).collect(),
                ));
                Ok(Kept::Seen)
            })
        }
    }

    fn recorder(fail: bool) -> Arc<Recorder> {
        Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
            fail,
        })
    }

    #[tokio::test]
    async fn every_sink_sees_the_decision_before_the_answer() {
        let (a, b) = (recorder(false), recorder(false));
        let engine = engine().with_sink(a.clone()).with_sink(b.clone());
        let c = call(&engine, ACCEPTED);
        let answered = engine
            .decide(c, |r, _| -> Result<usize, ()> {
                Ok(r.map(|c| c.entries.len()).unwrap_or(0))
            })
            .await
            .expect("decided");
        assert_eq!(answered.answer, 1);
        let decisions = answered
            .record
            .expect("decided")
            .checked
            .requests()
            .map(|r| r.decision)
            .collect::<Vec<_>>();
        for sink in [&a, &b] {
            assert_eq!(
                *sink.seen.lock().expect("lock"),
                vec![("/ServiceRequest".to_string(), decisions.clone())]
            );
        }
    }

    /// Records consults; the first call's ids are kept for every later call (a retry).
    struct FirstIds(Mutex<Option<Vec<String>>>);

    impl DecisionSink for FirstIds {
        fn name(&self) -> &'static str {
            "first-ids"
        }
        fn record<'a>(&'a self, record: &'a DecisionRecord) -> SinkFuture<'a> {
            let mut first = self.0.lock().expect("lock");
            let ids = first
                .get_or_insert_with(|| record.consult_ids.clone())
                .clone();
            Box::pin(std::future::ready(Ok(Kept::Recorded(ids))))
        }
    }

    #[tokio::test]
    async fn consult_ids_are_fresh_v7_and_the_answer_gets_those_a_recording_sink_kept() {
        // Without a recording sink, no id: an answer never names an unrecorded consult.
        let seen_only = engine().with_sink(recorder(false));
        let c = call(&seen_only, ACCEPTED);
        let answered = seen_only
            .decide(c, |_, _| -> Result<(), ()> { Ok(()) })
            .await
            .expect("decided");
        assert!(answered.consult_ids.is_empty());
        let fresh = &answered.record.expect("decided").consult_ids;
        assert_eq!(fresh.len(), 1);
        let id = uuid::Uuid::parse_str(&fresh[0]).expect("a uuid");
        assert_eq!(id.get_version_num(), 7);
        assert!(!fresh[0].starts_with("urn:"));

        let engine = engine()
            .with_sink(Arc::new(FirstIds(Mutex::new(None))))
            .with_sink(recorder(false));
        let mut kept = Vec::new();
        for _ in 0..2 {
            let c = call(&engine, ACCEPTED);
            let answered = engine
                .decide(c, |_, _| -> Result<(), ()> { Ok(()) })
                .await
                .expect("decided");
            let record = answered.record.expect("decided");
            kept.push((record.consult_ids.clone(), answered.consult_ids));
        }
        // Each call had fresh ids; both answers carry the first call's.
        assert_ne!(kept[0].0, kept[1].0);
        assert_eq!(kept[0].1, kept[0].0);
        assert_eq!(kept[1].1, kept[0].0);
    }

    #[tokio::test]
    async fn a_failing_sink_stops_the_answer_and_the_sinks_after_it() {
        let (failing, after) = (recorder(true), recorder(false));
        let engine = engine().with_sink(failing).with_sink(after.clone());
        let c = call(&engine, ACCEPTED);
        let err = engine
            .decide(c, |_, _| -> Result<(), ()> { Ok(()) })
            .await
            .expect_err("the sink failed");
        assert!(
            matches!(
                err,
                EngineError::Sink(SinkError {
                    sink: "recorder",
                    ..
                })
            ),
            "{err:?}"
        );
        assert!(after.seen.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn undecided_input_and_refused_results_reach_no_sink() {
        let sink = recorder(false);
        let engine = engine().with_sink(sink.clone());
        let malformed = call(&engine, "{not json");
        let answered = engine
            .decide(malformed, |r, _| -> Result<bool, ()> { Ok(r.is_err()) })
            .await
            .expect("answered");
        assert!(answered.answer && answered.record.is_none());
        let refused = call(&engine, ACCEPTED);
        let err = engine
            .decide(refused, |_, _| -> Result<(), &str> {
                Err("wrong endpoint")
            })
            .await
            .expect_err("refused");
        assert!(matches!(err, EngineError::FrontEnd("wrong endpoint")));
        assert!(sink.seen.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn a_panic_in_the_engine_is_an_error_and_frees_the_slot() {
        let engine = engine();
        let c = call(&engine, ACCEPTED);
        let err = engine
            .decide(c, |_, _| -> Result<(), ()> { panic!("translate failed") })
            .await
            .expect_err("panicked");
        assert!(matches!(err, EngineError::Failed(_)), "{err:?}");
        // The only slot is free again.
        let c = call(&engine, ACCEPTED);
        assert!(engine
            .decide(c, |_, _| -> Result<(), ()> { Ok(()) })
            .await
            .is_ok());
    }

    #[test]
    fn the_cli_path_calls_the_same_sinks() {
        let sink = recorder(false);
        let engine = engine().with_sink(sink.clone());
        let mut c = call(&engine, ACCEPTED);
        c.caller = Caller::Cli;
        engine
            .decide_blocking(c, |_, _| -> Result<(), ()> { Ok(()) })
            .expect("decided");
        assert_eq!(sink.seen.lock().expect("lock")[0].0, "cli");
    }
}
