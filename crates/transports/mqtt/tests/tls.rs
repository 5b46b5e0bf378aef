//! MQTT over TLS (`ssl://`): a private Mosquitto with a TLS listener (client certificates
//! required) and a plain one for the test client, on free loopback ports, with certificates
//! made by `openssl` for this run. Skipped, loudly, where `mosquitto` or `openssl` is missing.

mod common;

use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct PrivateBroker {
    child: Child,
    dir: PathBuf,
    plain: u16,
    tls: u16,
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        // Our own child process, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn answers(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate; and a second, unrelated
/// CA.
fn make_certs(dir: &Path) -> bool {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca = |name: &str| {
        let mut a = vec!["req", "-x509"];
        a.extend(ec);
        let key = format!("{name}.key");
        let crt = format!("{name}.crt");
        let subj = format!("/CN=jano test {name}");
        a.extend(["-keyout", &key, "-out", &crt, "-days", "2", "-subj", &subj]);
        openssl(dir, &a)
    };
    let leaf = |name: &str, ext: &str| {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let crt = format!("{name}.crt");
        let extfile = format!("{name}.ext");
        if std::fs::write(dir.join(&extfile), ext).is_err() {
            return false;
        }
        let mut a = vec!["req"];
        a.extend(ec);
        a.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"]);
        openssl(dir, &a)
            && openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &crt,
                    "-days",
                    "2",
                    "-extfile",
                    &extfile,
                ],
            )
    };
    ca("ca")
        && ca("otherca")
        && leaf(
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        && leaf("client", "extendedKeyUsage=clientAuth\n")
}

fn private_broker() -> Option<PrivateBroker> {
    let dir = std::env::temp_dir().join(unique("tls").replace('/', "-"));
    std::fs::create_dir_all(&dir).ok()?;
    if !make_certs(&dir) {
        eprintln!("\n*** SKIPPED: openssl could not make test certificates ***\n");
        let _ = std::fs::remove_dir_all(&dir);
        return None;
    }
    // Mosquitto started as root drops to its own user: let it read the files.
    let _ = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&dir)
        .status();
    let (plain, tls) = (free_port(), free_port());
    let d = dir.display();
    let conf = format!(
        "allow_anonymous true\nper_listener_settings false\npersistence false\n\
         log_dest none\n\
         listener {plain} 127.0.0.1\n\
         listener {tls} 127.0.0.1\ncafile {d}/ca.crt\ncertfile {d}/server.crt\n\
         keyfile {d}/server.key\nrequire_certificate true\n"
    );
    let conf_path = dir.join("mosquitto.conf");
    std::fs::write(&conf_path, conf).ok()?;
    let child = match Command::new("mosquitto")
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("\n*** SKIPPED: cannot run mosquitto: {e} ***\n");
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        }
    };
    let b = PrivateBroker {
        child,
        dir,
        plain,
        tls,
    };
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while !(answers(plain) && answers(tls)) {
        if std::time::Instant::now() > end {
            eprintln!("\n*** SKIPPED: the private mosquitto did not start ***\n");
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(b)
}

fn config(b: &PrivateBroker, t: &Topics, version: &str, ca: &str, verify: bool) -> String {
    let d = b.dir.display();
    t.jcfg(version, "", "")
        .replace(
            &format!("tcp://{BROKER}"),
            &format!("ssl://127.0.0.1:{}", b.tls),
        )
        .replace(
            "cleansession = 1",
            &format!(
                "cleansession = 1\nssl_enabled = true\ncacertfile = \"{d}/{ca}.crt\"\n\
                 certfile = \"{d}/client.crt\"\nkeyfile = \"{d}/client.key\"\nverify_peer = {verify}"
            ),
        )
}

async fn round_trip(b: &PrivateBroker, t: &Topics, v5: bool) {
    let mut c = Peer::connect_with(PeerOpts {
        v5,
        subs: vec![t.from_janus.clone()],
        port: b.plain,
        ..Default::default()
    })
    .await;
    let r = c.call(&t.to_janus, json!({"janus": "ping"})).await;
    assert_eq!(r["janus"], "pong");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_the_broker() {
    let Some(b) = private_broker() else {
        return;
    };
    let rt = runtime(60);

    // The broker's certificate checked against cacertfile, with a client certificate.
    let t = Topics::new("tls311");
    let srv = serve(&rt, &config(&b, &t, "3.1.1", "ca", true)).await;
    assert!(srv.stats().connected, "TLS with verify_peer");
    round_trip(&b, &t, false).await;
    srv.shutdown().await;

    // MQTT 5 over TLS, not checking the broker (Janus's default): another CA is fine.
    let t = Topics::new("tls5");
    let srv = serve(&rt, &config(&b, &t, "5", "otherca", false)).await;
    assert!(srv.stats().connected, "TLS without verify_peer");
    round_trip(&b, &t, true).await;
    srv.shutdown().await;

    // Checking the broker against the wrong CA: never connected, still running.
    let t = Topics::new("tlsbad");
    let srv = serve(&rt, &config(&b, &t, "3.1.1", "otherca", true)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st = srv.stats();
    assert!(!st.connected && st.connections == 0, "{st:?}");
    srv.shutdown().await;
    rt.shutdown();
}
