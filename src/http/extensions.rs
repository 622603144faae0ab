//! The markers the FHIR layer ([`super::negotiate::fhir_layer`]) and the handlers pass each
//! other in request and response extensions. Kept apart from both so that a route module (CDS
//! Hooks) and the layer that wraps it do not import each other.

use crate::rules::RuleSet;
use std::sync::Arc;

/// The rules in force for this request, loaded once at its start by the FHIR layer.
#[derive(Clone)]
pub struct CurrentRules(pub Arc<RuleSet>);

/// Marks a response that is not FHIR (the JSON of the CDS Hooks service): the FHIR layer
/// passes it through as it is, error statuses included.
#[derive(Clone, Copy)]
pub struct NotFhir;

/// The client's address (the peer's, or from `X-Forwarded-For` of a trusted proxy), put in the
/// request's extensions by the security layer (`super::guard`); the consult's client when no
/// token was given.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::IpAddr);
