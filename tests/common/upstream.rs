//! Upstreams for the inline-gateway tests (contract §7).
//!
//! [`FhirUpstream`] is a real FHIR server: Medplum's FHIR router over its in-memory repository
//! (`tests/support/fhir-upstream`, see its README), one per test on a free port. Node and npm
//! must be installed; `npm ci` runs once when `node_modules` is missing. Without them the
//! tests say so loudly and skip, and FAIL when `CI=true`.
//!
//! [`FaultStub`] is NOT a FHIR server: a few lines of TCP that answer slowly, answer 5xx, or
//! count calls, for the faults a real server cannot be made to produce on demand.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

fn support_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/fhir-upstream")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (loudly) or, in CI, fails.
fn unavailable(why: &str) -> Option<FhirUpstream> {
    let msg = format!(
        "\n==== SKIPPED: the real FHIR upstream cannot run: {why}.\n==== Install Node >= 20.19 and npm to run the inline-gateway tests (contract §7).\n"
    );
    if in_ci() {
        panic!("{msg}(CI=true: failing instead of skipping)");
    }
    eprintln!("{msg}");
    None
}

/// `npm ci` once per test process; the error, if it could not be done.
fn installed() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let version = Command::new("node")
            .arg("--version")
            .output()
            .map_err(|e| format!("`node` not found ({e})"))?;
        let v = String::from_utf8_lossy(&version.stdout).trim().to_string();
        let nums: Vec<u32> = v
            .trim_start_matches('v')
            .split('.')
            .filter_map(|n| n.parse().ok())
            .collect();
        if nums.len() < 2 || (nums[0], nums[1]) < (20, 19) {
            return Err(format!("node {v} is older than 20.19"));
        }
        let dir = support_dir();
        if dir.join("node_modules/@medplum/fhir-router").is_dir() {
            return Ok(());
        }
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("`npm` not found ({e})"))?;
        if !out.status.success() {
            return Err(format!(
                "`npm ci` failed in {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    })
    .clone()
}

/// A real FHIR R4 server, killed when dropped.
pub struct FhirUpstream {
    child: Child,
    pub base: String,
    pub client: reqwest::blocking::Client,
}

impl FhirUpstream {
    /// A fresh server with an empty repository; `None` (after a loud message) when Node is
    /// not available and `CI` is not `true`.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// With extra arguments for `server.js` after the port.
    pub fn start_with(args: &[&str]) -> Option<Self> {
        if let Err(why) = installed() {
            return unavailable(&why);
        }
        let mut child = Command::new("node")
            .arg("server.js")
            .arg("0")
            .args(args)
            .current_dir(support_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let line = super::first_stdout_line(&mut child);
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            panic!("the FHIR upstream did not start: {line:?}");
        };
        Some(FhirUpstream {
            child,
            base: format!("http://{addr}"),
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        })
    }

    /// GETs a path of the upstream itself (not through the gateway), as JSON.
    pub fn get(&self, path: &str) -> Value {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .expect("GET upstream");
        let text = res.text().expect("upstream body");
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("upstream answer not JSON ({e}): {text}"))
    }

    /// The ServiceRequests the upstream holds.
    pub fn service_requests(&self) -> Vec<Value> {
        let b = self.get("/ServiceRequest?_count=1000");
        b["entry"]
            .as_array()
            .map(|e| e.iter().map(|e| e["resource"].clone()).collect())
            .unwrap_or_default()
    }
}

impl Drop for FhirUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the fault stub answers.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Waits this long, then answers 201 with a small OperationOutcome.
    Slow(Duration),
    /// Answers this status with an OperationOutcome.
    Status(u16),
}

/// A TCP stub for faults (not a FHIR server): counts the requests it gets.
pub struct FaultStub {
    pub base: String,
    pub hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    pub fault: Arc<Mutex<Fault>>,
}

impl FaultStub {
    pub fn start(fault: Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let fault = Arc::new(Mutex::new(fault));
        let (h, s, f) = (hits.clone(), stop.clone(), fault.clone());
        listener.set_nonblocking(true).expect("nonblocking");
        std::thread::spawn(move || loop {
            if s.load(Ordering::SeqCst) {
                return;
            }
            match listener.accept() {
                Ok((conn, _)) => {
                    let (h, f) = (h.clone(), f.clone());
                    std::thread::spawn(move || serve_one(conn, &h, &f));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        });
        FaultStub {
            base,
            hits,
            stop,
            fault,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn serve_one(mut conn: TcpStream, hits: &AtomicUsize, fault: &Mutex<Fault>) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    // Read one request: head, then Content-Length bytes.
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + len {
                break;
            }
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let fault = fault
        .lock()
        .map(|f| f.clone())
        .unwrap_or(Fault::Status(500));
    let (status, reason) = match fault {
        Fault::Slow(d) => {
            std::thread::sleep(d);
            (201, "Created")
        }
        Fault::Status(s) => (s, "Fault"),
    };
    let body =
        r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}"#;
    let _ = write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/fhir+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl Drop for FaultStub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A local address nothing listens on (bound, then closed): connections are refused.
pub fn refused_base() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}")
}
