//! TLS and mutual TLS (contract §8, issue 17): certificates made here with rcgen, a test CA
//! for the server and one for clients; a client certificate from another CA is refused at the
//! handshake; the server certificate is reloaded on SIGHUP.

mod common;

use common::oidc::uuid_like;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use reqwest::blocking::Client;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA"),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate and its key (PEM) for `names`, for a server or a client.
    fn leaf(&self, names: &[&str], client: bool) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }
}

/// A gateway serving HTTPS; its files in a scratch folder.
struct TlsGateway {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl TlsGateway {
    fn start(dir: &Path, mutual: bool) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_referral-gateway"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .arg("--store")
            .arg(format!("sqlite:{}", dir.join("store.sqlite").display()))
            .arg("--tls-cert")
            .arg(dir.join("server.pem"))
            .arg("--tls-key")
            .arg(dir.join("server.key"));
        if mutual {
            cmd.arg("--tls-client-ca").arg(dir.join("client-ca.pem"));
        }
        let mut child = cmd
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("line");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("did not start: {line:?}"));
        Self {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    fn hangup(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok);
    }
}

impl Drop for TlsGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rg-tls-{}", uuid_like()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

fn client(trust: &str, identity: Option<(&str, &str)>) -> Client {
    let mut b = Client::builder()
        .timeout(Duration::from_secs(30))
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(trust.as_bytes()).expect("CA"));
    if let Some((cert, key)) = identity {
        b = b.identity(
            reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).expect("identity"),
        );
    }
    b.build().expect("client")
}

fn write_server(dir: &Path, ca: &Ca) {
    let (cert, key) = ca.leaf(&["localhost"], false);
    std::fs::write(dir.join("server.pem"), cert).expect("write");
    std::fs::write(dir.join("server.key"), key).expect("write");
}

#[test]
fn https_and_the_certificate_reloaded_on_sighup() {
    let dir = scratch();
    let first = Ca::new("first server CA");
    write_server(&dir, &first);
    let gw = TlsGateway::start(&dir, false);
    let trusts_first = client(&first.pem(), None);
    let res = trusts_first.get(gw.url("/health")).send().expect("HTTPS");
    assert_eq!(res.status(), 200);
    // Plain HTTP to the TLS port gets nothing usable.
    let plain = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
        .get(format!("http://127.0.0.1:{}/health", gw.port))
        .send();
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));

    // A new certificate from another CA, and SIGHUP: new connections get it.
    let second = Ca::new("second server CA");
    write_server(&dir, &second);
    let trusts_second = client(&second.pem(), None);
    assert!(trusts_second.get(gw.url("/health")).send().is_err());
    gw.hangup();
    let mut ok = false;
    for _ in 0..100 {
        if client(&second.pem(), None)
            .get(gw.url("/health"))
            .send()
            .is_ok_and(|r| r.status() == 200)
        {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ok, "the reloaded certificate is served");
    assert!(client(&first.pem(), None)
        .get(gw.url("/health"))
        .send()
        .is_err());
}

#[test]
fn mutual_tls_refuses_clients_without_a_certificate_of_its_ca() {
    let dir = scratch();
    let server_ca = Ca::new("server CA");
    write_server(&dir, &server_ca);
    let client_ca = Ca::new("client CA");
    std::fs::write(dir.join("client-ca.pem"), client_ca.pem()).expect("write");
    let gw = TlsGateway::start(&dir, true);

    let (cert, key) = client_ca.leaf(&["ehr-backend"], true);
    let good = client(&server_ca.pem(), Some((&cert, &key)));
    assert_eq!(
        good.get(gw.url("/metadata")).send().expect("mTLS").status(),
        200
    );

    let other_ca = Ca::new("another CA");
    let (cert, key) = other_ca.leaf(&["ehr-backend"], true);
    let stranger = client(&server_ca.pem(), Some((&cert, &key)));
    assert!(
        stranger.get(gw.url("/metadata")).send().is_err(),
        "a client certificate from another CA is refused"
    );

    let anonymous = client(&server_ca.pem(), None);
    assert!(
        anonymous.get(gw.url("/metadata")).send().is_err(),
        "no client certificate is refused"
    );
}
