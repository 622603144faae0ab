//! A gateway started for a test: `serve --listen 127.0.0.1:0`, the bound address read from
//! its first line on stdout, its log in a scratch file; killed when dropped.

use reqwest::blocking::{Client, Response};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const FHIR_JSON: &str = "application/fhir+json";
pub const FHIR_XML: &str = "application/fhir+xml";

pub struct Server {
    child: Child,
    pub base: String,
    log: PathBuf,
    pub client: Client,
    /// The server's own consult store (a SQLite file beside its log), unless the test chose
    /// one with `--store`: no test writes the default `data/` file.
    pub store: Option<PathBuf>,
}

impl Server {
    pub fn start(args: &[&str]) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let log = std::env::temp_dir().join(format!(
            "rg-server-{}-{}.log",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let log_file = std::fs::File::create(&log).expect("log file");
        let store = (!args
            .iter()
            .any(|a| *a == "--store" || a.starts_with("--store=")))
        .then(|| log.with_extension("sqlite"));
        let store_arg: Vec<String> = store
            .iter()
            .flat_map(|p| ["--store".to_string(), format!("sqlite:{}", p.display())])
            .collect();
        let mut child = Command::new(env!("CARGO_BIN_EXE_referral-gateway"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(&store_arg)
            .args(args)
            .env_remove("REFERRAL_GATEWAY_STORE")
            .env_remove("RUST_LOG")
            .env_remove("REFERRAL_GATEWAY_RULES")
            .env_remove("REFERRAL_GATEWAY_PROFILES")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("start the gateway");
        let line = super::first_stdout_line(&mut child);
        let mut server = Server {
            child,
            base: String::new(),
            log,
            client: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            store,
        };
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            panic!("the gateway did not start: {line:?}\n{}", server.log());
        };
        server.base = format!("http://{addr}");
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `HOST:PORT` of the server.
    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Peak resident memory of the server so far, in KiB (Linux `VmHWM`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// A raw HTTP/1.1 connection to the server.
    pub fn connect(&self) -> TcpStream {
        let conn = TcpStream::connect(self.addr()).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("read timeout");
        conn
    }

    pub fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().expect("GET")
    }

    /// POSTs `body` as `content_type` (none when `None`).
    pub fn post(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Vec<u8>>,
    ) -> Response {
        let mut req = self.client.post(self.url(path)).body(body.into());
        if let Some(ct) = content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        req.send().expect("POST")
    }

    /// POSTs `body` as FHIR JSON.
    pub fn post_json(&self, path: &str, body: &Value) -> Response {
        self.post(path, Some(FHIR_JSON), body.to_string())
    }

    /// Sends the process a signal (`-HUP`, `-TERM`).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// The exit status, once the process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("wait")
    }

    pub fn metrics(&self) -> String {
        self.get("/metrics").text().expect("metrics")
    }

    /// Waits until a metrics line reads `value`.
    pub fn wait_for_metric(&self, line: &str, value: u64) {
        let want = format!("{line} {value}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let m = self.metrics();
            if m.lines().any(|l| l == want) {
                return;
            }
            assert!(Instant::now() < deadline, "never saw `{want}` in\n{m}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        if let Some(db) = &self.store {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
        }
    }
}
/// Status, headers (lower-case names) and body of a raw HTTP/1.1 response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                self.head,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Reads one response (with a Content-Length body) from a raw connection; `None` if the
/// connection closed before a whole response arrived.
pub fn read_response(conn: &mut TcpStream) -> Option<RawResponse> {
    let mut data = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + len {
                let status = head.split(' ').nth(1)?.parse().ok()?;
                return Some(RawResponse {
                    status,
                    head,
                    body: data[end + 4..end + 4 + len].to_vec(),
                });
            }
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends a request head and then the body from `chunks` (errors writing are ignored: the
/// server may answer and close before the body is all sent) while reading the answer.
pub fn send_streaming(
    addr: &str,
    head: &str,
    chunks: impl Iterator<Item = Vec<u8>> + Send + 'static,
) -> (Option<RawResponse>, Duration) {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let started = Instant::now();
    conn.write_all(head.as_bytes()).expect("head");
    let mut writer = conn.try_clone().expect("clone");
    let sending = std::thread::spawn(move || {
        for c in chunks {
            if writer.write_all(&c).is_err() {
                break;
            }
        }
    });
    let res = read_response(&mut conn);
    let elapsed = started.elapsed();
    // Unblocks the writer, if the server stopped reading without closing.
    let _ = conn.shutdown(std::net::Shutdown::Both);
    let _ = sending.join();
    (res, elapsed)
}
