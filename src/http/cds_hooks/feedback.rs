//! `POST /cds-services/{id}/feedback`: what the clinician did with a card (`accepted` a
//! suggestion, or `overridden` it, with a reason). Each item is counted in `/metrics` by
//! service, rule and outcome, and logged without patient data (the clinician's free-text
//! comment is never logged: it may name the patient).
//!
//! Feedback names a card by its uuid only, so the service remembers which rule each card it
//! issued was about, for the most recent [`REMEMBERED_CARDS`] cards. Feedback on a card it no
//! longer remembers (or never issued) is counted under the rule `unknown`.

use crate::dates::parse_fhir_datetime;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

/// How many issued cards are remembered for feedback; the oldest are forgotten first.
pub const REMEMBERED_CARDS: usize = 10_000;

/// The rule label of a card about no rule (invalid FHIR), and of a card not remembered.
pub const NO_RULE: &str = "none";
pub const UNKNOWN_CARD: &str = "unknown";

#[derive(Default)]
struct Remembered {
    /// card uuid → (service id, rule id).
    by_uuid: HashMap<String, (&'static str, Option<String>)>,
    order: VecDeque<String>,
}

/// The cards issued recently, by uuid.
#[derive(Default)]
pub struct IssuedCards {
    inner: Mutex<Remembered>,
}

impl IssuedCards {
    pub fn remember(&self, service: &'static str, uuid: &str, rule: Option<&str>) {
        let mut r = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if r.by_uuid
            .insert(uuid.to_string(), (service, rule.map(str::to_string)))
            .is_none()
        {
            r.order.push_back(uuid.to_string());
        }
        while r.order.len() > REMEMBERED_CARDS {
            if let Some(old) = r.order.pop_front() {
                r.by_uuid.remove(&old);
            }
        }
    }

    /// The rule label of the card `uuid` issued by `service`.
    pub fn rule_of(&self, service: &str, uuid: &str) -> String {
        let r = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match r.by_uuid.get(uuid) {
            Some((s, rule)) if *s == service => rule.clone().unwrap_or_else(|| NO_RULE.into()),
            _ => UNKNOWN_CARD.into(),
        }
    }
}

/// One checked feedback item.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackItem {
    pub card: String,
    pub outcome: Outcome,
    /// `system|code` of the override reason, when one was chosen.
    pub override_reason: Option<String>,
    pub accepted_suggestions: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Overridden,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Overridden => "overridden",
        }
    }
}

/// Reads and checks a feedback body; the error lists every problem.
pub fn parse(body: &Value) -> Result<Vec<FeedbackItem>, Vec<String>> {
    let mut problems = Vec::new();
    let items = match body.get("feedback") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => return Err(vec!["feedback is empty".into()]),
        Some(_) => return Err(vec!["feedback must be an array of feedback items".into()]),
        None => {
            return Err(vec![
                "the body must be an object with a feedback array (CDS Hooks feedback)".into(),
            ])
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("feedback[{i}]");
        let card = match item.get("card").and_then(Value::as_str) {
            Some(c) if uuid::Uuid::parse_str(c).is_ok() => c.to_string(),
            Some(_) => {
                problems.push(format!("{at}.card is not a card uuid"));
                String::new()
            }
            None => {
                problems.push(format!("{at}.card is required (the card's uuid)"));
                String::new()
            }
        };
        let outcome = match item.get("outcome").and_then(Value::as_str) {
            Some("accepted") => Some(Outcome::Accepted),
            Some("overridden") => Some(Outcome::Overridden),
            Some(other) => {
                problems.push(format!(
                    "{at}.outcome '{other}' is not 'accepted' or 'overridden'"
                ));
                None
            }
            None => {
                problems.push(format!("{at}.outcome is required"));
                None
            }
        };
        match item.get("outcomeTimestamp").and_then(Value::as_str) {
            Some(t) if parse_fhir_datetime(t).is_ok() => {}
            Some(_) => problems.push(format!("{at}.outcomeTimestamp is not an ISO date-time")),
            None => problems.push(format!("{at}.outcomeTimestamp is required")),
        }
        let mut accepted_suggestions = 0;
        match (outcome, item.get("acceptedSuggestions")) {
            (Some(Outcome::Accepted), Some(Value::Array(list))) if !list.is_empty() => {
                for (j, s) in list.iter().enumerate() {
                    if s.get("id").and_then(Value::as_str).is_none() {
                        problems.push(format!(
                            "{at}.acceptedSuggestions[{j}].id is required (the suggestion's uuid)"
                        ));
                    }
                }
                accepted_suggestions = list.len();
            }
            (Some(Outcome::Accepted), _) => problems.push(format!(
                "{at}.acceptedSuggestions is required for an accepted outcome"
            )),
            _ => {}
        }
        let mut override_reason = None;
        if let Some(reason) = item.get("overrideReason") {
            if outcome == Some(Outcome::Accepted) {
                problems.push(format!("{at}.overrideReason is only for overridden cards"));
            }
            match reason.get("reason") {
                None => {}
                Some(coding) => match (
                    coding.get("system").and_then(Value::as_str),
                    coding.get("code").and_then(Value::as_str),
                ) {
                    (Some(s), Some(c)) => override_reason = Some(format!("{s}|{c}")),
                    _ => problems.push(format!(
                        "{at}.overrideReason.reason must be a Coding with system and code"
                    )),
                },
            }
            if let Some(c) = reason.get("userComment") {
                if !c.is_string() {
                    problems.push(format!("{at}.overrideReason.userComment must be a string"));
                }
            }
        }
        if let Some(outcome) = outcome {
            out.push(FeedbackItem {
                card,
                outcome,
                override_reason,
                accepted_suggestions,
            });
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn remembers_the_most_recent_cards_only() {
        let issued = IssuedCards::default();
        for i in 0..=REMEMBERED_CARDS {
            issued.remember("svc", &format!("card-{i}"), Some("US05"));
        }
        assert_eq!(issued.rule_of("svc", "card-0"), UNKNOWN_CARD);
        assert_eq!(issued.rule_of("svc", "card-1"), "US05");
        assert_eq!(issued.rule_of("other", "card-1"), UNKNOWN_CARD);
        issued.remember("svc", "no-rule", None);
        assert_eq!(issued.rule_of("svc", "no-rule"), NO_RULE);
    }

    #[test]
    fn accepted_needs_suggestions_and_override_reason_needs_a_coding() {
        let card = "4e0a3a1e-3283-4575-ab82-028d55fe2719";
        let bad = json!({ "feedback": [
            { "card": card, "outcome": "accepted", "outcomeTimestamp": "2026-01-01T10:00:00Z" },
            { "card": card, "outcome": "overridden", "outcomeTimestamp": "2026-01-01T10:00:00Z",
              "overrideReason": { "reason": { "display": "no code" } } },
        ]});
        let problems = parse(&bad).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        let good = json!({ "feedback": [
            { "card": card, "outcome": "overridden", "outcomeTimestamp": "2026-01-01T10:00:00Z",
              "overrideReason": { "reason": { "system": "s", "code": "c" }, "userComment": "x" } },
        ]});
        let items = parse(&good).expect("valid feedback");
        assert_eq!(items[0].override_reason.as_deref(), Some("s|c"));
    }
}
