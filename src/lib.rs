//! referral-gateway: checks GP referrals for diagnostic imaging (FHIR R4 `ServiceRequest`s)
//! against a hospital's referral guidance.
//!
//! The pipeline, one module a stage:
//! [`parse`] → [`profile`] → [`context`] → [`terminology`] → [`rules`] → [`outcome`], tied together by
//! [`engine`], with thin front ends in [`cli`] and [`http`].

pub mod cli;
pub mod context;
pub mod dates;
pub mod engine;
pub mod fhirpath;
pub mod http;
pub mod outcome;
pub mod parse;
pub mod profile;
pub mod rules;
pub mod terminology;
