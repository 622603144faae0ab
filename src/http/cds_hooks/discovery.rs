//! `GET /cds-services`: the discovery document. One service per hook, both answering with the
//! same rules; the prefetch templates bring the patient (for the age rules) and the ordering
//! user with their organisation (for the organisation rules) without a round trip.

use serde_json::{json, Value};

/// The hooks served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    OrderSelect,
    OrderSign,
}

impl Hook {
    pub fn name(self) -> &'static str {
        match self {
            Hook::OrderSelect => "order-select",
            Hook::OrderSign => "order-sign",
        }
    }
}

/// One CDS service of the discovery document.
#[derive(Debug)]
pub struct Service {
    pub id: &'static str,
    pub hook: Hook,
    pub title: &'static str,
    pub description: &'static str,
}

pub const SERVICES: [Service; 2] = [
    Service {
        id: "imaging-referral-order-select",
        hook: Hook::OrderSelect,
        title: "Imaging referral guidance (order-select)",
        description: "Checks the imaging ServiceRequests just selected (context.selections) against the hospital's referral guidance: cards for requests the guidance rejects, and a one-click replacement for requests it redirects to another pathway.",
    },
    Service {
        id: "imaging-referral-order-sign",
        hook: Hook::OrderSign,
        title: "Imaging referral guidance (order-sign)",
        description: "Checks every draft imaging ServiceRequest about to be signed against the hospital's referral guidance: cards for requests the guidance rejects, and a one-click replacement for requests it redirects to another pathway.",
    },
];

/// The prefetch templates: key → FHIR query. The keys are those of
/// [`super::request::PREFETCH_TYPES`].
pub const PREFETCH: [(&str, &str); 3] = [
    ("patient", "Patient/{{context.patientId}}"),
    ("practitioner", "Practitioner/{{userPractitionerId}}"),
    (
        "practitionerRole",
        "PractitionerRole?_id={{userPractitionerRoleId}}&_include=PractitionerRole:organization&_include=PractitionerRole:practitioner",
    ),
];

pub fn service(id: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.id == id)
}

/// The discovery document.
pub fn document() -> Value {
    let prefetch: serde_json::Map<String, Value> = PREFETCH
        .iter()
        .map(|(k, q)| ((*k).to_string(), json!(q)))
        .collect();
    json!({
        "services": SERVICES.iter().map(|s| json!({
            "hook": s.hook.name(),
            "title": s.title,
            "description": s.description,
            "id": s.id,
            "prefetch": prefetch,
        })).collect::<Vec<_>>()
    })
}
