//! The engine's decisions → CDS Hooks 2.0 cards.
//!
//! - rejected: one card per fired reject rule, `critical` when the rule says the examination
//!   is not justified (`not_justified` in its file), else `warning`;
//! - a rule that applies but lacks context (the age, the requesting organisation): one
//!   `warning` card per rule saying what was needed, and which prefetch keys were not sent;
//! - redirected: one `warning` card with one suggestion of two actions, `delete` the draft
//!   order and `create` the redirected ServiceRequest of contract §3;
//! - warn / inform rules: `warning` / `info` cards, whatever the decision;
//! - a draft order that is not valid FHIR R4: one `warning` card listing the errors;
//! - accepted without such findings: no card;
//! - `order-sign` also answers `systemActions`: each decided draft order, `update`d with its
//!   consult id and decision ([`system_actions`]).
//!
//! Other findings (a procedure the terminology does not know, say) give no card: an EHR calls
//! the hook for every order, most of which are not imaging referrals at all.

use super::request::HookRequest;
use crate::engine::{Checked, EntryResult, RequestResult};
use crate::finding::{Decision, Finding, Severity};
use crate::rules::publish::CDS_OVERRIDE_REASONS;
use crate::rules::rule::{Action, Rule};
use crate::rules::RuleSet;
use crate::site::Site;
use serde_json::{json, Map, Value};

/// `card.summary` must be shorter than 140 characters.
const SUMMARY_MAX_CHARS: usize = 139;

/// A card with what the feedback endpoint needs to know about it.
#[derive(Debug, Clone)]
pub struct IssuedCard {
    pub uuid: String,
    /// The guidance rule the card is about (`None` for a card about invalid FHIR).
    pub rule: Option<String>,
    pub card: Value,
    /// The position of the order it is about among the decided ServiceRequests: the index of
    /// its consult id.
    pub consult: usize,
}

/// `text` cut to the summary limit, on a character boundary, marked with an ellipsis.
pub fn summary(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= SUMMARY_MAX_CHARS {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(SUMMARY_MAX_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// The guidance quoted as a Markdown block quote.
fn quote(text: &str) -> String {
    text.trim()
        .lines()
        .map(|l| format!("> {}", l.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The card's source. No `url`: the canonical URL of the guidance-rule CodeSystem is an
/// identifier, not a page anyone can open (CDS Hooks 2.0 `source.url`: "an absolute URL to load
/// to find out more"); the rule is named by `topic`.
fn source(rule: &Rule, site: &Site) -> Value {
    json!({
        "label": format!("Referral guidance: {}", rule.def.section),
        "topic": {
            "system": site.code_system("guidance-rule"),
            "code": rule.def.id,
            "display": rule.def.title,
        },
    })
}

fn override_reasons(site: &Site) -> Value {
    Value::Array(
        CDS_OVERRIDE_REASONS
            .iter()
            .map(|(code, display, _)| {
                json!({ "system": site.code_system("cds-override-reason"), "code": code, "display": display })
            })
            .collect(),
    )
}

/// How the card names the order it is about: its code's text (or display) and reference.
fn order_label(order: &Value) -> String {
    let name = order
        .pointer("/code/text")
        .and_then(Value::as_str)
        .or_else(|| {
            order
                .pointer("/code/coding/0/display")
                .and_then(Value::as_str)
        })
        .unwrap_or("imaging request");
    match order.get("id").and_then(Value::as_str) {
        Some(id) => format!("{name} (ServiceRequest/{id})"),
        None => name.to_string(),
    }
}

struct Card {
    indicator: &'static str,
    summary: String,
    detail: String,
    source: Value,
    rule: Option<String>,
    suggestion: Option<Value>,
    override_reasons: bool,
}

impl Card {
    fn issue(self, site: &Site) -> IssuedCard {
        let uuid = uuid::Uuid::new_v4().to_string();
        let mut card = Map::new();
        card.insert("uuid".into(), json!(uuid));
        card.insert("summary".into(), json!(summary(&self.summary)));
        card.insert("detail".into(), json!(self.detail));
        card.insert("indicator".into(), json!(self.indicator));
        card.insert("source".into(), self.source);
        if let Some(s) = self.suggestion {
            card.insert("suggestions".into(), json!([s]));
            card.insert("selectionBehavior".into(), json!("at-most-one"));
        }
        if self.override_reasons {
            card.insert("overrideReasons".into(), override_reasons(site));
        }
        IssuedCard {
            uuid,
            rule: self.rule,
            card: Value::Object(card),
            consult: 0,
        }
    }
}

/// The cards for every decided ServiceRequest of `checked`. `origin` maps each Bundle entry
/// of the engine's input to the draft order it came from.
pub fn cards(
    checked: &Checked,
    rules: &RuleSet,
    request: &HookRequest,
    origin: &[Option<usize>],
) -> Vec<IssuedCard> {
    let mut out: Vec<IssuedCard> = Vec::new();
    let mut decided = 0;
    for (entry, result) in checked.input.entries.iter().zip(&checked.entries) {
        let EntryResult::Request(r) = result else {
            continue;
        };
        // Every card pushed for this entry is about its consult.
        let consult = decided;
        decided += 1;
        let first = out.len();
        about_request(&mut out, entry, r, rules, request, origin);
        for c in &mut out[first..] {
            c.consult = consult;
        }
    }
    out
}

/// A decided draft order of an `order-sign` call, to be stamped once its consult id is known.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// The position of its consult among the decided ServiceRequests (as [`IssuedCard::consult`]).
    pub consult: usize,
    pub draft: Value,
    pub decision: Decision,
}

/// Every draft order the engine decided, with its decision. A draft that is not valid FHIR R4
/// is not stamped (its card says why; an update would send the invalid order back).
pub fn stamps(checked: &Checked, request: &HookRequest, origin: &[Option<usize>]) -> Vec<Stamp> {
    let mut out = Vec::new();
    let mut decided = 0;
    for (entry, result) in checked.input.entries.iter().zip(&checked.entries) {
        let EntryResult::Request(r) = result else {
            continue;
        };
        let consult = decided;
        decided += 1;
        let draft = entry
            .index
            .and_then(|i| origin.get(i).copied().flatten())
            .and_then(|d| request.draft_orders.get(d));
        if let Some(draft) = draft.filter(|_| !r.invalid) {
            out.push(Stamp {
                consult,
                draft: draft.resource.clone(),
                decision: r.decision,
            });
        }
    }
    out
}

/// Adds `coding` to a resource's `meta.tag`, creating `meta` in its place (after `id`).
fn add_tag(resource: &mut Value, coding: Value) {
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    if !obj.contains_key("meta") {
        let mut ordered = Map::new();
        for k in ["resourceType", "id"] {
            if let Some(v) = obj.remove(k) {
                ordered.insert(k.into(), v);
            }
        }
        ordered.insert("meta".into(), json!({}));
        for (k, v) in std::mem::take(obj) {
            ordered.insert(k, v);
        }
        *obj = ordered;
    }
    let Some(meta) = obj.get_mut("meta").and_then(Value::as_object_mut) else {
        return;
    };
    match meta.get_mut("tag").and_then(Value::as_array_mut) {
        Some(tags) => tags.push(coding),
        None => {
            meta.insert("tag".into(), json!([coding]));
        }
    }
}

/// The `order-sign` `systemActions` (contract §9): one `update` per stamped draft order, the
/// order as the EHR sent it with the consult-id extension (§6) and the decision coding in
/// `meta.tag` (as a redirected ServiceRequest carries it), so that the signed order keeps the
/// consult that justified it — the pattern of the CDS Hooks imaging appropriate-use services.
pub fn system_actions(stamps: &[Stamp], site: &Site, consult_ids: &[String]) -> Vec<Value> {
    stamps
        .iter()
        .filter_map(|s| {
            let id = consult_ids.get(s.consult)?;
            let mut order = s.draft.clone();
            add_tag(&mut order, site.decision_coding(s.decision));
            crate::store::record::add_extension(
                &mut order,
                crate::store::record::consult_extension(site, id),
            );
            Some(json!({
                "type": "update",
                "description": format!(
                    "Record the referral-guidance consult ({}) on {}",
                    s.decision.code(),
                    order_label(&s.draft)
                ),
                "resource": order,
            }))
        })
        .collect()
}

/// The cards about one decided ServiceRequest (none when it is no draft order of the call).
fn about_request(
    out: &mut Vec<IssuedCard>,
    entry: &crate::parse::Entry,
    r: &RequestResult,
    rules: &RuleSet,
    request: &HookRequest,
    origin: &[Option<usize>],
) {
    let draft = entry
        .index
        .and_then(|i| origin.get(i).copied().flatten())
        .and_then(|d| request.draft_orders.get(d));
    let Some(draft) = draft else {
        return;
    };
    let label = order_label(&draft.resource);
    let entry_path = entry.path.to_string();
    if r.invalid {
        out.push(invalid_card(r, &label, &entry_path).issue(&rules.site));
        return;
    }
    // Errors of no guidance rule are the profile's (a missing priority, say): the order is
    // rejected whatever the rules say, so the EHR must hear it.
    if r.findings.iter().any(|f| f.is_error() && f.rule.is_none()) {
        out.push(profile_card(r, &label, &entry_path).issue(&rules.site));
    }
    let redirected = r.redirected.as_ref().map(|sr| own_paths(sr, &entry_path));
    out.extend(
        request_cards(r, redirected, rules, request, &label, draft.reference())
            .into_iter()
            .map(|c| c.issue(&rules.site)),
    );
}

/// The redirected ServiceRequest with the element paths of its note written from the order
/// itself (`ServiceRequest.code.text`), as `POST /ServiceRequest` writes them, not from the
/// Bundle the engine was given (`Bundle.entry[0].resource.code.text`).
fn own_paths(redirected: &Value, entry_path: &str) -> Value {
    let mut sr = redirected.clone();
    for note in sr
        .get_mut("note")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(Value::String(text)) = note.get_mut("text") {
            *text = text.replace(&format!("{entry_path}."), "ServiceRequest.");
        }
    }
    sr
}

/// The errors of `r` that `keep` selects, as a markdown list naming the elements of the order.
fn error_list(r: &RequestResult, entry_path: &str, keep: impl Fn(&Finding) -> bool) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.is_error() && keep(f))
        .map(|f| {
            // Paths into the gateway's own Bundle mean nothing to the EHR: name the order.
            let at: Vec<String> = f
                .expression
                .iter()
                .map(|p| p.to_string().replacen(entry_path, "ServiceRequest", 1))
                .collect();
            if at.is_empty() {
                format!("- {}", f.text)
            } else {
                format!("- {} (`{}`)", f.text, at.join("`, `"))
            }
        })
        .collect()
}

fn profile_card(r: &RequestResult, label: &str, entry_path: &str) -> Card {
    let errors = error_list(r, entry_path, |f| f.rule.is_none());
    Card {
        indicator: "warning",
        summary: "This order lacks what an imaging referral must carry; complete it before signing"
            .into(),
        detail: format!(
            "The draft order {label} does not meet the imaging referral profile:\n\n{}",
            errors.join("\n")
        ),
        source: json!({ "label": "Referral gateway: imaging referral profile" }),
        rule: None,
        suggestion: None,
        override_reasons: false,
    }
}

fn invalid_card(r: &RequestResult, label: &str, entry_path: &str) -> Card {
    let errors = error_list(r, entry_path, |_| true);
    Card {
        indicator: "warning",
        summary: "This order is not valid FHIR R4, so the referral guidance could not be checked"
            .into(),
        detail: format!(
            "The draft order {label} could not be checked against the referral guidance:\n\n{}",
            errors.join("\n")
        ),
        source: json!({ "label": "Referral gateway: FHIR R4 check of the order" }),
        rule: None,
        suggestion: None,
        override_reasons: false,
    }
}

fn find_rule<'a>(rules: &'a RuleSet, id: &str) -> Option<&'a Rule> {
    rules.rules.iter().find(|r| r.def.id == id)
}

fn request_cards(
    r: &RequestResult,
    redirected: Option<Value>,
    rules: &RuleSet,
    request: &HookRequest,
    label: &str,
    order_ref: Option<String>,
) -> Vec<Card> {
    let site = &rules.site;
    // Findings by rule, in rule order (a rule lacking context has one finding per item).
    let mut by_rule: Vec<(&Rule, Vec<&Finding>)> = Vec::new();
    for f in &r.findings {
        let Some(rule) = f.rule.as_ref().and_then(|rr| find_rule(rules, &rr.id)) else {
            continue;
        };
        match by_rule.iter_mut().find(|(x, _)| x.def.id == rule.def.id) {
            Some((_, fs)) => fs.push(f),
            None => by_rule.push((rule, vec![f])),
        }
    }
    // The engine redirects on the first redirect rule that fired, in rule order.
    let redirecting = (r.decision == Decision::Redirected)
        .then(|| {
            by_rule.iter().find(|(rule, _)| {
                rule.def.action == Action::Redirect && !r.needs_context.contains(&rule.def.id)
            })
        })
        .flatten()
        .map(|(rule, _)| rule.def.id.clone());

    let mut cards = Vec::new();
    for (rule, findings) in &by_rule {
        let def = &rule.def;
        if r.needs_context.contains(&def.id) {
            cards.push(missing_context_card(rule, findings, request, label, site));
            continue;
        }
        let matched = findings
            .iter()
            .filter_map(|f| f.diagnostics.as_deref())
            .collect::<Vec<_>>()
            .join("; ");
        match def.action {
            Action::Reject if r.decision == Decision::Rejected => {
                cards.push(Card {
                    indicator: if def.not_justified {
                        "critical"
                    } else {
                        "warning"
                    },
                    summary: def.title.clone(),
                    detail: guidance_detail(
                        rule,
                        &matched,
                        label,
                        Some(&site.duty_radiologist_advice()),
                    ),
                    source: source(rule, site),
                    rule: Some(def.id.clone()),
                    suggestion: None,
                    override_reasons: true,
                });
            }
            Action::Redirect if redirecting.as_deref() == Some(def.id.as_str()) => {
                cards.push(redirect_card(
                    rule,
                    redirected.as_ref(),
                    &matched,
                    label,
                    order_ref.as_deref(),
                    site,
                ));
            }
            Action::Warn | Action::Inform => cards.push(Card {
                indicator: if def.action == Action::Warn {
                    "warning"
                } else {
                    "info"
                },
                summary: def.title.clone(),
                detail: guidance_detail(rule, &matched, label, None),
                source: source(rule, site),
                rule: Some(def.id.clone()),
                suggestion: None,
                override_reasons: def.action == Action::Warn,
            }),
            // A reject rule on a redirected request, or a second redirect: the redirect
            // replaces the order, so these are not shown.
            _ => {}
        }
    }
    cards
}

fn guidance_detail(rule: &Rule, matched: &str, label: &str, contact: Option<&str>) -> String {
    let def = &rule.def;
    let mut d = format!(
        "**{}** (guidance rule {}, {})\n\nThe guidance says:\n\n{}\n\n**Why this card:** {}",
        def.title,
        def.id,
        def.section,
        quote(&def.guidance),
        def.why.trim()
    );
    if !matched.is_empty() {
        d.push_str(&format!(" ({matched})"));
    }
    d.push_str(&format!(
        "\n\n**What to do instead:** {}",
        def.advice.trim()
    ));
    if let Some(c) = contact {
        d.push_str(&format!("\n\n**Whom to contact:** {c}"));
    }
    d.push_str(&format!("\n\nOrder: {label}"));
    d
}

fn redirect_card(
    rule: &Rule,
    redirected: Option<&Value>,
    matched: &str,
    label: &str,
    order_ref: Option<&str>,
    site: &Site,
) -> Card {
    let def = &rule.def;
    let pathway = def.pathway.as_deref().and_then(|p| site.pathway(p));
    let name = pathway.map_or("another pathway", |p| p.name.as_str());
    let mut detail = guidance_detail(rule, matched, label, None);
    if let Some(p) = pathway {
        detail.push_str(&format!(
            "\n\n**Refer to:** {} — {}.",
            p.name,
            p.booking_with_contact()
        ));
    }
    let suggestion = redirected.map(|redirected| {
        let mut actions = Vec::new();
        if let Some(reference) = order_ref {
            actions.push(json!({
                "type": "delete",
                "description": format!("Remove the draft order {label}"),
                "resourceId": reference,
            }));
        }
        actions.push(json!({
            "type": "create",
            "description": format!("Create a draft referral to {name}"),
            "resource": redirected,
        }));
        json!({
            "label": format!("Replace with a referral to {name}"),
            "uuid": uuid::Uuid::new_v4().to_string(),
            "isRecommended": true,
            "actions": actions,
        })
    });
    if suggestion.is_some() {
        detail.push_str(&match order_ref {
            Some(_) => "\n\nThe suggestion replaces this order with a draft referral to the pathway, in one step.".to_string(),
            None => "\n\nThe suggestion creates a draft referral to the pathway; the order has no id, so remove it yourself.".to_string(),
        });
    }
    Card {
        indicator: "warning",
        summary: format!("Refer to {name} instead: {}", def.title),
        detail,
        source: source(rule, site),
        rule: Some(def.id.clone()),
        suggestion,
        override_reasons: true,
    }
}

fn missing_context_card(
    rule: &Rule,
    findings: &[&Finding],
    request: &HookRequest,
    label: &str,
    site: &Site,
) -> Card {
    let def = &rule.def;
    let mut detail = format!(
        "Guidance rule {} (**{}**) may apply to this order, but it needs information that was not sent:\n\n{}",
        def.id,
        def.title,
        findings
            .iter()
            .filter(|f| f.severity >= Severity::Error)
            .map(|f| format!("- {}", f.text))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let not_sent = request.prefetch_not_sent();
    if !not_sent.is_empty() {
        detail.push_str(&format!(
            "\n\nThe EHR did not send these prefetch keys of the discovery document: `{}`. Send them, or record the information in the order.",
            not_sent.join("`, `")
        ));
    }
    let failed = request.prefetch_failed();
    if !failed.is_empty() {
        detail.push_str(&format!(
            "\n\nThe EHR reported that it could not prefetch: `{}`. Record the information in the order, or try again when it is available.",
            failed.join("`, `")
        ));
    }
    detail.push_str(&format!("\n\nOrder: {label}"));
    Card {
        indicator: "warning",
        summary: format!(
            "More information needed for guidance rule {}: {}",
            def.id, def.title
        ),
        detail,
        source: source(rule, site),
        rule: Some(def.id.clone()),
        suggestion: None,
        override_reasons: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_cut_below_140_characters_on_a_char_boundary() {
        let long = "é".repeat(200);
        let s = summary(&long);
        assert_eq!(s.chars().count(), SUMMARY_MAX_CHARS);
        assert!(s.ends_with('…'));
        assert_eq!(summary("  short  "), "short");
    }

    #[test]
    fn guidance_is_quoted_line_by_line() {
        assert_eq!(quote("\nOne.\n  Two.\n"), "> One.\n> Two.");
    }
}
