//! Stage 5: the answer. Findings and the decision become a FHIR OperationOutcome, a redirected
//! ServiceRequest, or a response Bundle.

pub mod operation_outcome;
pub mod response;
