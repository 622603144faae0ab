//! The clinical corpus: GP-style referrals written from the guidance, each with the decision,
//! pathway and rules the guidance expects, and the per-rule precision and recall of the rules
//! on them. Used by `referral-gateway rules report` and by `tests/corpus.rs`.
//!
//! A corpus file is TOML with `[[case]]` tables (see `tests/corpus/README.md`).

use crate::engine;
use crate::finding::Decision;
use crate::parse::{Format, Limits};
use crate::rules::rule::Action;
use crate::rules::RuleSet;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// One referral of the corpus, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    /// The examination as the GP wrote it (ServiceRequest.code.text).
    pub code: String,
    /// A coded procedure, "system|code|display" (system: snomed or loinc).
    #[serde(default)]
    pub procedure_code: Option<String>,
    /// ServiceRequest.reasonCode[0].text.
    #[serde(default)]
    pub reason: Option<String>,
    /// A coded reason, "snomed|code|display".
    #[serde(default)]
    pub reason_code: Option<String>,
    /// ServiceRequest.note[0].text.
    #[serde(default)]
    pub note: Option<String>,
    /// Age in whole years at authoredOn (2026-06-15); default 50.
    #[serde(default)]
    pub age: Option<u32>,
    /// Who asks: "gp" (a display naming the GP, no organisation: the default), "practice"
    /// (an Organization named as a GP surgery, no ODS code), "ods:CODE" (an Organization with
    /// that ODS code).
    #[serde(default)]
    pub requester: Option<String>,
    /// A renal function result (eGFR) this many days before authoredOn.
    #[serde(default)]
    pub egfr_days: Option<i64>,
    /// The 2WW marker as a category code (SNOMED 199251000000107).
    #[serde(default)]
    pub two_week_wait_code: bool,
    /// Send it as a Bundle with the Patient (and Organization, Observation) as entries rather
    /// than contained resources.
    #[serde(default)]
    pub bundle: bool,
    pub decision: Decision,
    /// For redirects: the pathway id of site.toml.
    #[serde(default)]
    pub pathway: Option<String>,
    /// The rules the guidance expects to fire (empty: none).
    #[serde(default)]
    pub rules: Vec<String>,
    /// One line: why, citing the tip.
    pub why: String,
    /// A disagreement the team knows of and has not fixed, and why (a reading the gateway
    /// cannot yet express, or a judgement call left to the lead). The case is kept and the
    /// score counts it as a miss; the corpus test fails if it starts agreeing, so that the note
    /// is then removed.
    #[serde(default)]
    pub known_miss: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CorpusFile {
    #[serde(default)]
    case: Vec<Case>,
}

/// Reads every `*.toml` of `path` (sorted) as corpus cases, or `path` alone when it is a file
/// (a new blind set is scored alone, before it joins the folder).
pub fn read_corpus(path: &Path) -> Result<Vec<Case>, String> {
    let mut files: Vec<_> = if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect()
    };
    files.sort();
    let mut cases = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let parsed: CorpusFile =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        cases.extend(parsed.case);
    }
    let mut seen = std::collections::HashSet::new();
    for c in &cases {
        if !seen.insert(c.id.clone()) {
            return Err(format!("case id {} is used twice", c.id));
        }
    }
    Ok(cases)
}

fn coding(spec: &str) -> Value {
    let mut parts = spec.splitn(3, '|');
    let system = match parts.next().unwrap_or("") {
        "snomed" => "http://snomed.info/sct",
        "loinc" => "http://loinc.org",
        other => other,
    };
    let code = parts.next().unwrap_or("");
    let display = parts.next().unwrap_or("");
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

/// The FHIR request of a case.
pub fn build(case: &Case) -> Value {
    let age = case.age.unwrap_or(50);
    // Born the day after authoredOn's date, `age + 1` years earlier: exactly `age` years old.
    let birth = format!("{}-06-16", 2026 - i64::from(age) - 1);
    let mut code = json!({"text": case.code});
    if let Some(p) = &case.procedure_code {
        code = coding(p);
        code["text"] = json!(case.code);
    }
    let mut sr = json!({
        "resourceType": "ServiceRequest", "id": "corpus", "status": "active", "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "363679005", "display": "Imaging"}]}],
        "priority": "routine", "authoredOn": "2026-06-15", "code": code,
    });
    if case.two_week_wait_code {
        if let Some(a) = sr["category"].as_array_mut() {
            a.push(json!({"coding": [{"system": "http://snomed.info/sct", "code": "199251000000107", "display": "Fast track cancer referral"}]}));
        }
    }
    let mut reason_codes = Vec::new();
    if let Some(r) = &case.reason_code {
        reason_codes.push(coding(r));
    }
    // A field written blank ("note = \"\"", a template left empty) is sent as no element: FHIR
    // strings may not be empty, and the case means a request that says nothing there.
    fn written(t: &Option<String>) -> Option<&str> {
        t.as_deref().filter(|t| !t.trim().is_empty())
    }
    if let Some(r) = written(&case.reason) {
        reason_codes.push(json!({"text": r}));
    }
    if !reason_codes.is_empty() {
        sr["reasonCode"] = json!(reason_codes);
    }
    if let Some(n) = written(&case.note) {
        sr["note"] = json!([{"text": n}]);
    }
    let mut context: Vec<(String, Value)> = vec![(
        "patient".into(),
        json!({"resourceType": "Patient", "id": "patient", "birthDate": birth}),
    )];
    let requester = case.requester.as_deref().unwrap_or("gp");
    let org = match requester {
        "practice" => Some(json!({"resourceType": "Organization", "id": "org", "name": "Riverside Surgery (fictitious GP practice)"})),
        other => other.strip_prefix("ods:").map(|ods| json!({
            "resourceType": "Organization", "id": "org",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": ods}],
            "name": "Example organisation (fictitious)"})),
    };
    if let Some(o) = org {
        context.push(("org".into(), o));
    }
    if let Some(days) = case.egfr_days {
        let date = time::Date::from_calendar_date(2026, time::Month::June, 15)
            .map(|d| d - time::Duration::days(days))
            .map(|d| d.to_string())
            .unwrap_or_default();
        context.push(("egfr".into(), json!({
            "resourceType": "Observation", "id": "egfr", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "62238-1", "display": "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula (CKD-EPI)"}]},
            "subject": {"reference": "#patient"},
            "effectiveDateTime": date,
            "valueQuantity": {"value": 78, "unit": "mL/min/1.73m2"}})));
    }
    let reference = |id: &str| {
        if case.bundle {
            let n = match id {
                "patient" => 2,
                "org" => 3,
                _ => 4,
            };
            format!("urn:uuid:00000000-0000-4000-8000-{n:012}")
        } else {
            format!("#{id}")
        }
    };
    sr["subject"] = json!({"reference": reference("patient")});
    sr["requester"] = if context.iter().any(|(id, _)| id == "org") {
        json!({"reference": reference("org")})
    } else {
        json!({"display": "Dr Sam Example (fictitious GP)"})
    };
    if context.iter().any(|(id, _)| id == "egfr") {
        sr["supportingInfo"] = json!([{"reference": reference("egfr")}]);
    }
    if case.bundle {
        let mut entries = vec![
            json!({"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001", "resource": sr}),
        ];
        for (id, mut r) in context {
            if r.get("subject").is_some() {
                r["subject"] = json!({"reference": reference("patient")});
            }
            entries.push(json!({"fullUrl": reference(&id), "resource": r}));
        }
        json!({"resourceType": "Bundle", "type": "collection", "entry": entries})
    } else {
        sr["contained"] = json!(context.into_iter().map(|(_, r)| r).collect::<Vec<_>>());
        sr
    }
}

/// What the gateway said about one case.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: String,
    pub expected: Decision,
    pub expected_pathway: Option<String>,
    pub expected_rules: Vec<String>,
    pub got: Result<Decision, String>,
    pub pathway: Option<String>,
    pub fired: Vec<String>,
    pub why: String,
    pub known_miss: Option<String>,
}

impl Outcome {
    /// Decided as the guidance says: the decision, and for a redirect the pathway.
    pub fn agrees(&self) -> bool {
        self.got.as_ref().ok() == Some(&self.expected)
            && (self.expected != Decision::Redirected || self.pathway == self.expected_pathway)
    }

    /// The rules that fired are the rules the guidance expects.
    pub fn rules_agree(&self) -> bool {
        let mut a = self.expected_rules.clone();
        let mut b = self.fired.clone();
        a.sort();
        b.sort();
        a == b
    }
}

/// Runs every case.
pub fn run(rules: &RuleSet, cases: &[Case]) -> Vec<Outcome> {
    cases
        .iter()
        .map(|c| {
            let v = build(c);
            let (got, fired, pathway) = match engine::check(
                rules,
                v.to_string().as_bytes(),
                Format::Json,
                &Limits::default(),
            ) {
                Err(u) => (
                    Err(format!(
                        "unusable: {}",
                        u.findings().first().map(|f| f.text.as_str()).unwrap_or("")
                    )),
                    Vec::new(),
                    None,
                ),
                Ok(checked) => match checked.requests().next() {
                    None => (Err("no ServiceRequest".into()), Vec::new(), None),
                    Some(r) if r.invalid => (
                        Err(format!(
                            "invalid: {}",
                            r.findings.first().map(|f| f.text.as_str()).unwrap_or("")
                        )),
                        Vec::new(),
                        None,
                    ),
                    Some(r) => {
                        let pathway = if r.decision == Decision::Redirected {
                            r.fired.iter().find_map(|id| {
                                rules
                                    .rules
                                    .iter()
                                    .find(|x| &x.def.id == id && x.def.action == Action::Redirect)
                                    .and_then(|x| x.def.pathway.clone())
                            })
                        } else {
                            None
                        };
                        (Ok(r.decision), r.fired.clone(), pathway)
                    }
                },
            };
            Outcome {
                id: c.id.clone(),
                expected: c.decision,
                expected_pathway: c.pathway.clone(),
                expected_rules: c.rules.clone(),
                got,
                pathway,
                fired,
                why: c.why.clone(),
                known_miss: c.known_miss.clone(),
            }
        })
        .collect()
}

/// Counts for one rule over the corpus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleCounts {
    pub true_positive: usize,
    pub false_positive: usize,
    pub false_negative: usize,
    /// Cases where the rule was expected to fire.
    pub expected: usize,
}

/// Per-rule counts, in rule id order.
pub fn counts(rules: &RuleSet, outcomes: &[Outcome]) -> BTreeMap<String, RuleCounts> {
    let mut out: BTreeMap<String, RuleCounts> = rules
        .rules
        .iter()
        .map(|r| (r.def.id.clone(), RuleCounts::default()))
        .collect();
    for o in outcomes {
        for (id, c) in out.iter_mut() {
            let want = o.expected_rules.contains(id);
            let did = o.fired.contains(id);
            c.expected += usize::from(want);
            match (want, did) {
                (true, true) => c.true_positive += 1,
                (false, true) => c.false_positive += 1,
                (true, false) => c.false_negative += 1,
                (false, false) => {}
            }
        }
    }
    out
}

fn ratio(n: usize, d: usize) -> String {
    if d == 0 {
        "–".into()
    } else {
        format!("{:.2}", n as f64 / d as f64)
    }
}

/// The report as Markdown: agreement, the per-rule table, and every disagreement.
pub fn markdown(rules: &RuleSet, outcomes: &[Outcome]) -> String {
    let agree = outcomes.iter().filter(|o| o.agrees()).count();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Decided as the guidance says: {agree} of {} ({:.1}%)\n",
        outcomes.len(),
        100.0 * agree as f64 / outcomes.len().max(1) as f64
    );
    let _ = writeln!(s, "| rule | cases expecting it | fired correctly | fired wrongly | missed | precision | recall |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for (id, c) in counts(rules, outcomes) {
        let _ = writeln!(
            s,
            "| {id} | {} | {} | {} | {} | {} | {} |",
            c.expected,
            c.true_positive,
            c.false_positive,
            c.false_negative,
            ratio(c.true_positive, c.true_positive + c.false_positive),
            ratio(c.true_positive, c.true_positive + c.false_negative)
        );
    }
    let wrong: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !o.agrees() || !o.rules_agree())
        .collect();
    if !wrong.is_empty() {
        let _ = writeln!(s, "\nDisagreements (decision, pathway or rules):\n");
        for o in wrong {
            let _ = writeln!(
                s,
                "- {}: expected {:?}{} {:?}, got {}{} {:?} — {}",
                o.id,
                o.expected,
                o.expected_pathway
                    .as_deref()
                    .map(|p| format!(" → {p}"))
                    .unwrap_or_default(),
                o.expected_rules,
                match &o.got {
                    Ok(d) => format!("{d:?}"),
                    Err(e) => e.clone(),
                },
                o.pathway
                    .as_deref()
                    .map(|p| format!(" → {p}"))
                    .unwrap_or_default(),
                o.fired,
                o.why
            );
            if let Some(k) = &o.known_miss {
                let _ = writeln!(s, "  - known miss: {k}");
            }
        }
    }
    s
}
