//! referral-gateway: checks GP referrals for diagnostic imaging (FHIR R4 `ServiceRequest`s)
//! against a hospital's referral guidance.
//!
//! Modules form layers with no cycles (`tests/layers.rs` keeps them so), bottom to top:
//! - core types: [`fhirpath`], [`dates`], [`finding`], [`site`];
//! - loading: [`load`] (rule sources, file loaders, the one `LoadError`);
//! - the stages: [`parse`] → [`context`] → [`terminology`] → [`profile`] → [`rules`];
//! - [`engine`]: one decision per ServiceRequest, and the one engine service front ends call;
//! - [`outcome`]: the answer (OperationOutcome, response Bundle);
//! - front ends: [`http`] (FHIR REST and CDS Hooks) and [`cli`] (which also starts `serve`).

pub mod auth;
pub mod cli;
pub mod context;
pub mod dates;
pub mod engine;
pub mod explain;
pub mod fhirpath;
pub mod finding;
pub mod http;
pub mod load;
pub mod outcome;
pub mod parse;
pub mod profile;
pub mod rules;
pub mod site;
pub mod store;
pub mod terminology;
