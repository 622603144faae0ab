//! Inputs shared by the benches.

use serde_json::{json, Value};

/// A batch Bundle of `n` entries: `n / 2` ServiceRequests, each with its own Patient, the
/// subject a `urn:uuid` reference to it (so every request resolves a reference).
pub fn batch_with_patients(sr: &[u8], n: usize) -> Vec<u8> {
    let mut sr: Value = serde_json::from_slice(sr).expect("example JSON");
    let patient = sr["contained"][0].clone();
    if let Some(o) = sr.as_object_mut() {
        o.remove("contained");
    }
    let mut entries = Vec::with_capacity(n);
    for i in 0..n / 2 {
        let patient_url = format!("urn:uuid:00000000-0000-4000-8000-{:012}", 2 * i + 1);
        let mut s = sr.clone();
        s["id"] = json!(format!("sr-{i}"));
        s["subject"] = json!({ "reference": patient_url });
        entries.push(json!({
            "fullUrl": format!("urn:uuid:00000000-0000-4000-8000-{:012}", 2 * i),
            "resource": s,
            "request": {"method": "POST", "url": "ServiceRequest"}
        }));
        let mut p = patient.clone();
        p["id"] = json!(format!("pat-{i}"));
        entries.push(json!({
            "fullUrl": patient_url,
            "resource": p,
            "request": {"method": "POST", "url": "Patient"}
        }));
    }
    serde_json::to_vec(&json!({"resourceType": "Bundle", "type": "batch", "entry": entries}))
        .expect("serialises")
}
