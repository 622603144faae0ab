//! Site data (`rules/site.toml`): what is local to one hospital.

use crate::finding::Decision;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Base of the gateway's CodeSystem URLs (`{canonical}/CodeSystem/guidance-rule`).
    #[serde(default = "default_canonical")]
    pub canonical: String,
    #[serde(default = "default_renal_days")]
    pub renal_function_max_age_days: i64,
    pub duty_radiologist: DutyRadiologist,
    pub pathways: Vec<Pathway>,
    #[serde(default)]
    pub site_lists: BTreeMap<String, SiteList>,
    /// Canonical URLs of the StructureDefinitions (in the profiles folder) that every
    /// ServiceRequest is checked against, whether or not it declares them in `meta.profile`.
    #[serde(default)]
    pub enforce_profiles: Vec<String>,
    /// What goes to the upstream FHIR server when the gateway runs with `--upstream` (§7).
    #[serde(default)]
    pub upstream: UpstreamSite,
    /// Rule id → mode (contract §6 "Rule modes"): `enforce` (the default), `advise` or
    /// `shadow`. An id that names no rule is a load error.
    #[serde(default)]
    pub rule_modes: BTreeMap<String, RuleMode>,
}

/// How a rule's finding acts on the answer (contract §6 "Rule modes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleMode {
    /// The rule's own action: reject, redirect, warn or inform.
    #[default]
    Enforce,
    /// A reject or redirect becomes a warning on an accepted answer (a warning card in CDS
    /// Hooks): the department is told, the order goes ahead.
    Advise,
    /// Evaluated and recorded in the consult; hidden from every answer a caller sees
    /// (`$validate` included): a new or changed rule is trialled on live traffic first.
    Shadow,
}

impl RuleMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleMode::Enforce => "enforce",
            RuleMode::Advise => "advise",
            RuleMode::Shadow => "shadow",
        }
    }
}

/// The `[upstream]` table of site data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSite {
    /// Resource types whose reads and searches are passed through to the upstream.
    #[serde(default = "default_read_types")]
    pub read_types: Vec<String>,
    /// Context types of a Bundle (Patient, Observation, ...) forwarded with its
    /// ServiceRequests; by default none is.
    #[serde(default)]
    pub forward_context_types: Vec<String>,
}

impl Default for UpstreamSite {
    fn default() -> Self {
        Self {
            read_types: default_read_types(),
            forward_context_types: Vec::new(),
        }
    }
}

fn default_read_types() -> Vec<String> {
    vec!["ServiceRequest".to_string()]
}

/// What happens to a request redirected to a pathway when the gateway has an upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forward {
    /// The redirected ServiceRequest is created upstream (201 + its Location).
    Upstream,
    /// The redirected ServiceRequest is returned to the caller; nothing is forwarded.
    #[default]
    Return,
}

pub const DEFAULT_CANONICAL: &str = "https://referral-gateway.example.org/fhir";

fn default_canonical() -> String {
    DEFAULT_CANONICAL.to_string()
}

fn default_renal_days() -> i64 {
    90
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DutyRadiologist {
    pub name: String,
    pub extension: String,
    pub hours: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pathway {
    pub id: String,
    pub name: String,
    pub contact: String,
    pub booking: String,
    #[serde(default)]
    pub hours: String,
    /// With an upstream: create the redirected request there, or return it (the default).
    #[serde(default)]
    pub forward: Forward,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteList {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub ods_codes: Vec<String>,
}

impl Pathway {
    /// How to book, with the contact added unless the booking already gives it (a booking such
    /// as "Refer directly to the DVT clinic (ext 5378)" names its contact already, and saying
    /// "(ext 5378) (ext 5378)" helps nobody).
    pub fn booking_with_contact(&self) -> String {
        let booking = self.booking.trim().trim_end_matches('.');
        let contact = self.contact.trim();
        // "via e-RS (urology)" is given by a booking "... in urology via e-RS".
        let route = contact.split(" (").next().unwrap_or(contact).trim();
        if contact.is_empty() || booking.contains(contact) || booking.contains(route) {
            booking.to_string()
        } else {
            format!("{booking} ({contact})")
        }
    }
}

impl Site {
    /// The mode of rule `id` (enforce unless `[rule_modes]` says otherwise).
    pub fn rule_mode(&self, id: &str) -> RuleMode {
        self.rule_modes.get(id).copied().unwrap_or_default()
    }

    pub fn pathway(&self, id: &str) -> Option<&Pathway> {
        self.pathways.iter().find(|p| p.id == id)
    }

    pub fn code_system(&self, name: &str) -> String {
        format!("{}/CodeSystem/{name}", self.canonical.trim_end_matches('/'))
    }

    /// The coding of a decision, in the site's decision CodeSystem.
    pub fn decision_coding(&self, decision: Decision) -> serde_json::Value {
        serde_json::json!({
            "system": self.code_system("referral-decision"),
            "code": decision.code(),
            "display": decision.display(),
        })
    }

    /// The sentence that ends every rejection.
    pub fn duty_radiologist_advice(&self) -> String {
        let d = &self.duty_radiologist;
        format!(
            "To discuss this request, contact the {} (ext {}, {}).",
            d.name, d.extension, d.hours
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Pathway;

    fn pathway(contact: &str, booking: &str) -> Pathway {
        Pathway {
            id: "p".into(),
            name: "P".into(),
            contact: contact.into(),
            booking: booking.into(),
            hours: String::new(),
            forward: Default::default(),
        }
    }

    #[test]
    fn the_contact_is_said_once() {
        let dvt = pathway("ext 5378", "Refer directly to the DVT clinic (ext 5378).");
        assert_eq!(
            dvt.booking_with_contact(),
            "Refer directly to the DVT clinic (ext 5378)"
        );
        let urology = pathway("via e-RS", "Refer to urology");
        assert_eq!(
            urology.booking_with_contact(),
            "Refer to urology (via e-RS)"
        );
        let haematuria = pathway("via e-RS (urology)", "Refer to the clinic via e-RS");
        assert_eq!(
            haematuria.booking_with_contact(),
            "Refer to the clinic via e-RS"
        );
    }
}
