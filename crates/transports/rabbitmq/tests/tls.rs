//! TLS options against the real broker behind a TLS terminator (`socat`, with certificates made
//! by `openssl` for the test): `ssl_cacert`, `ssl_cert`/`ssl_key` (the terminator demands a
//! client certificate), `ssl_verify_peer`, `ssl_verify_hostname`. Skipped (loudly) when `socat`
//! or `openssl` is missing.

mod common;

use common::*;
use jano_rabbitmq::{Settings, Tls};
use serde_json::json;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "openssl {args:?} failed");
}

/// A test CA, a server certificate for `localhost` only, and a client certificate.
fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=jano test CA",
    ]);
    openssl(dir, &a);
    for (name, ext) in [
        (
            "server",
            "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).expect("ext file");
        let mut a = vec!["req"];
        a.extend(ec);
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let subj = format!("/CN=jano-{name}");
        a.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &a);
        let pem = format!("{name}.pem");
        let ext = format!("{name}.ext");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
}

struct Socat(Child);

impl Drop for Socat {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn terminator(dir: &Path) -> (Socat, u16) {
    let port = free_port();
    let d = dir.display();
    let child = Command::new("socat")
        .arg(format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={d}/server.pem,\
             key={d}/server.key,cafile={d}/ca.pem,verify=1"
        ))
        .arg("TCP:127.0.0.1:5672")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat");
    let guard = Socat(child);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "socat did not listen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (guard, port)
}

struct Case {
    name: &'static str,
    host: &'static str,
    cacert: bool,
    client_cert: bool,
    verify_peer: bool,
    verify_hostname: bool,
    connects: bool,
}

fn tls_settings(c: &Case, dir: &Path, port: u16) -> Settings {
    let mut s = settings(&unique(c.name));
    s.host = c.host.into();
    s.port = port;
    s.admin = None;
    let p = |f: &str| Some(PathBuf::from(dir).join(f));
    s.tls = Some(Tls {
        cacert: if c.cacert { p("ca.pem") } else { None },
        cert: if c.client_cert { p("client.pem") } else { None },
        key: if c.client_cert { p("client.key") } else { None },
        verify_peer: c.verify_peer,
        verify_hostname: c.verify_hostname,
    });
    s
}

async fn run_case(c: Case, dir: PathBuf, port: u16) -> Result<(), String> {
    let rt = runtime(60);
    let s = tls_settings(&c, &dir, port);
    let server = jano_rabbitmq::serve(&rt, s.clone())
        .await
        .map_err(|e| format!("{}: serve: {e}", c.name))?;
    let wait = if c.connects { 10 } else { 2 };
    let up = server.wait_connected(Duration::from_secs(wait)).await;
    let r = if up != c.connects {
        Err(format!(
            "{}: expected connected={}, got {up}",
            c.name, c.connects
        ))
    } else if up {
        // A full round trip through the broker behind TLS.
        let api = s.api.clone().expect("api");
        let mut peer = Peer::connect().await;
        peer.declare(&api.to_janus).await;
        peer.declare(&api.from_janus).await;
        peer.consume(&api.from_janus).await;
        let r = peer
            .call(
                &api.to_janus,
                json!({"janus": "ping", "transaction": "tls"}),
            )
            .await;
        peer.close().await;
        if r.body["janus"] == "pong" {
            Ok(())
        } else {
            Err(format!("{}: {:?}", c.name, r.body))
        }
    } else {
        Ok(())
    };
    server.shutdown().await;
    rt.shutdown();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_options() {
    if !ensure_broker() {
        return;
    }
    if !have("socat") || !have("openssl") {
        eprintln!("\n*** SKIPPED: the TLS test needs `socat` and `openssl` ***\n");
        return;
    }
    init_logs();
    let dir = std::env::temp_dir().join(unique("tls"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    make_certs(&dir);
    let (_socat, port) = terminator(&dir).await;
    let cases = vec![
        Case {
            name: "all-checks",
            host: "localhost",
            cacert: true,
            client_cert: true,
            verify_peer: true,
            verify_hostname: true,
            connects: true,
        },
        Case {
            name: "wrong-name",
            host: "127.0.0.1",
            cacert: true,
            client_cert: true,
            verify_peer: true,
            verify_hostname: true,
            connects: false,
        },
        Case {
            name: "wrong-name-unchecked",
            host: "127.0.0.1",
            cacert: true,
            client_cert: true,
            verify_peer: true,
            verify_hostname: false,
            connects: true,
        },
        Case {
            name: "unknown-ca",
            host: "localhost",
            cacert: false,
            client_cert: true,
            verify_peer: true,
            verify_hostname: true,
            connects: false,
        },
        Case {
            name: "unknown-ca-unchecked",
            host: "127.0.0.1",
            cacert: false,
            client_cert: true,
            verify_peer: false,
            verify_hostname: false,
            connects: true,
        },
        Case {
            name: "unknown-ca-name-checked",
            host: "127.0.0.1",
            cacert: false,
            client_cert: true,
            verify_peer: false,
            verify_hostname: true,
            connects: false,
        },
        Case {
            name: "no-client-cert",
            host: "localhost",
            cacert: true,
            client_cert: false,
            verify_peer: true,
            verify_hostname: true,
            connects: false,
        },
    ];
    let runs: Vec<_> = cases
        .into_iter()
        .map(|c| tokio::spawn(run_case(c, dir.clone(), port)))
        .collect();
    let mut failures = Vec::new();
    for r in runs {
        match r.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn unreadable_tls_files_are_a_start_up_error() {
    let rt = runtime(60);
    let mut s = settings(&unique("tls-missing"));
    s.tls = Some(Tls {
        cacert: Some("/nonexistent/ca.pem".into()),
        cert: None,
        key: None,
        verify_peer: true,
        verify_hostname: true,
    });
    let r = jano_rabbitmq::serve(&rt, s).await;
    assert!(r.is_err(), "serve accepted a missing ssl_cacert");
    rt.shutdown();
}
