//! Safe by default (contract §8, issue 17): no unauthenticated service on a non-loopback
//! address unless `--insecure` (then warned of in /health); the caller's `X-Request-Id`
//! bounded; per-client rate limits.

mod common;

use common::oidc::JsonBody;
use common::server::Server;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn a_non_loopback_address_without_authentication_refuses_to_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
        .args(["serve", "--listen", "0.0.0.0:0", "--store", "none"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("--insecure"), "{log}");
    assert!(log.contains("--auth-issuer"), "{log}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty());
}

#[test]
fn insecure_serves_and_says_so_in_health() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--insecure",
            "--store",
            "none",
        ])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("line");
    let port = line.trim().rsplit(':').next().unwrap_or("").to_string();
    let health: Value = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .expect("health")
        .json()
        .expect("JSON");
    let _ = child.kill();
    let _ = child.wait();
    let warning = health["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .find(|i| i["severity"] == "warning")
        .unwrap_or_else(|| panic!("a warning in {health}"));
    assert_eq!(warning["code"], "security");
    assert!(warning["details"]["text"]
        .as_str()
        .unwrap_or("")
        .contains("--insecure"));
}

#[test]
fn loopback_without_authentication_serves_without_warning() {
    let s = Server::start(&[]);
    let health: Value = s.get("/health").json().expect("JSON");
    assert_eq!(
        health["issue"].as_array().map(Vec::len),
        Some(1),
        "{health}"
    );
}

#[test]
fn long_or_odd_request_ids_are_replaced() {
    let s = Server::start(&[]);
    let echoed = |id: &str| -> String {
        let res = s
            .client
            .get(s.url("/health"))
            .header("x-request-id", id)
            .send()
            .expect("GET");
        res.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_string()
    };
    assert_eq!(echoed("caller-id-42"), "caller-id-42");
    let max = "a".repeat(128);
    assert_eq!(echoed(&max), max);
    let long = "b".repeat(10_000);
    let own = echoed(&long);
    assert_ne!(own, long);
    assert!(own.len() <= 128 && !own.is_empty(), "{own}");
    assert_ne!(echoed("has space"), "has space");
    assert!(!s.log().contains(&long));
}

#[test]
fn a_client_over_its_rate_is_told_to_wait() {
    let s = Server::start(&["--rate-limit-per-client", "1"]);
    // Bursts of twice the rate pass; then 429.
    let statuses: Vec<u16> = (0..4)
        .map(|_| s.get("/metadata").status().as_u16())
        .collect();
    assert_eq!(&statuses[..2], &[200, 200], "{statuses:?}");
    let res = s.get("/metadata");
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry), "{retry}");
    let oo: Value = res.json().expect("OperationOutcome");
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(oo["issue"][0]["code"], "throttled");
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(s.get("/metadata").status(), 200, "the bucket refills");
    let metrics = s.get("/metrics").text().expect("text");
    assert!(
        metrics.contains("referral_gateway_rate_limited_total"),
        "{metrics}"
    );
}
