//! referral-gateway: checks GP referrals for diagnostic imaging (FHIR R4 `ServiceRequest`s)
//! against a hospital's referral guidance.
//!
//! The pipeline, one module a stage:
//! [`parse`] → [`context`] → [`terminology`] → [`rules`] → [`outcome`], tied together by
//! [`engine`], with thin front ends in [`cli`] and [`http`].

pub mod context;
pub mod dates;
pub mod fhirpath;
pub mod parse;
pub mod terminology;
pub mod outcome;
