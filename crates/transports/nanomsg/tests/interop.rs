//! Interop with real Scalability Protocols stacks: libnng (pynng's `Pair0`) and libnanomsg
//! (`NN_PAIR` through ctypes), in both directions — jano binds and the peer dials, the peer
//! listens and jano connects — over ipc:// and tcp://, Janus API and Admin API. The peer is
//! `tests/peers/janus_peer.py`; a library that cannot be loaded skips its tests loudly.

mod common;

use common::*;
use jano_nanomsg::{serve, Address, Mode};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PEER_DEADLINE: Duration = Duration::from_secs(60);
/// The script's exit code for "library not available".
const SKIP: i32 = 77;

fn script() -> String {
    format!("{}/tests/peers/janus_peer.py", env!("CARGO_MANIFEST_DIR"))
}

fn start_peer(lib: &str, mode: &str, api: &Address, admin: &Address) -> Child {
    Command::new("python3")
        .arg(script())
        .args([lib, mode])
        .arg(api.to_string())
        .arg(admin.to_string())
        .arg(ADMIN_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs")
}

/// Waits (bounded) for the peer; returns its exit code and output.
async fn finish(mut child: Child) -> (Option<i32>, String) {
    tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s.code(),
                Ok(None) if start.elapsed() > PEER_DEADLINE => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => break None,
            }
        };
        let mut out = String::new();
        if let Some(mut s) = child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        if let Some(mut s) = child.stderr.take() {
            let _ = s.read_to_string(&mut out);
        }
        (status, out)
    })
    .await
    .expect("join")
}

fn judge(what: &str, (code, out): (Option<i32>, String)) {
    match code {
        Some(0) => assert!(out.contains("OK"), "{what}: {out}"),
        Some(SKIP) => eprintln!(
            "\n!!!!!!!! SKIPPED {what}: the peer library is not available !!!!!!!!\n{out}\n\
             (install it: pip install -r tests/python/requirements.txt; apt-get install libnanomsg5)\n"
        ),
        _ => panic!("{what}: peer exited with {code:?}:\n{out}"),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Ipc,
    Tcp,
}

/// The peer dials a bound jano.
async fn peer_dials(lib: &str, kind: Kind) {
    let dir = TempDir::new();
    let (api, admin) = match kind {
        Kind::Ipc => (dir.ipc("api.ipc"), dir.ipc("admin.ipc")),
        Kind::Tcp => (tcp_any_port(), tcp_any_port()),
    };
    let rt = runtime(60);
    let srv = serve(
        &rt,
        settings(
            Some(ep(Mode::Bind, api.clone())),
            Some(ep(Mode::Bind, admin.clone())),
        ),
    )
    .await
    .expect("jano binds");
    let api = reach(&api, srv.api_tcp_addr());
    let admin = reach(&admin, srv.admin_tcp_addr());
    let child = start_peer(lib, "dial", &api, &admin);
    judge(&format!("{lib} dials jano at {api}"), finish(child).await);
    srv.stop();
}

/// The peer listens; jano connects to it.
async fn jano_dials(lib: &str, kind: Kind) {
    let dir = TempDir::new();
    let (api, admin) = match kind {
        Kind::Ipc => (dir.ipc("peer.ipc"), dir.ipc("peer-admin.ipc")),
        Kind::Tcp => {
            let tcp = |port| Address::Tcp {
                host: "127.0.0.1".into(),
                port,
            };
            (tcp(free_port()), tcp(free_port()))
        }
    };
    let child = start_peer(lib, "listen", &api, &admin);
    let rt = runtime(60);
    // jano may start before the peer listens: it redials with backoff.
    let srv = serve(
        &rt,
        settings(
            Some(ep(Mode::Connect, api.clone())),
            Some(ep(Mode::Connect, admin.clone())),
        ),
    )
    .await
    .expect("jano starts");
    judge(&format!("jano dials {lib} at {api}"), finish(child).await);
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_dials_jano_ipc() {
    peer_dials("pynng", Kind::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_dials_jano_tcp() {
    peer_dials("pynng", Kind::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jano_dials_pynng_ipc() {
    jano_dials("pynng", Kind::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jano_dials_pynng_tcp() {
    jano_dials("pynng", Kind::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libnanomsg_dials_jano_ipc() {
    peer_dials("nanomsg", Kind::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libnanomsg_dials_jano_tcp() {
    peer_dials("nanomsg", Kind::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jano_dials_libnanomsg_ipc() {
    jano_dials("nanomsg", Kind::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jano_dials_libnanomsg_tcp() {
    jano_dials("nanomsg", Kind::Tcp).await;
}

/// Two peers of one library dial the same jano: the second is refused while the first holds
/// the pair, and the library's own redialing gets it in once the first leaves.
async fn takeover(lib: &str, kind: Kind) {
    let dir = TempDir::new();
    let api = match kind {
        Kind::Ipc => dir.ipc("api.ipc"),
        Kind::Tcp => tcp_any_port(),
    };
    let rt = runtime(60);
    let srv = serve(&rt, settings(Some(ep(Mode::Bind, api.clone())), None))
        .await
        .expect("jano binds");
    let api = reach(&api, srv.api_tcp_addr());
    let child = Command::new("python3")
        .arg(script())
        .args([lib, "takeover"])
        .arg(api.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    judge(
        &format!("two {lib} peers take turns at {api}"),
        finish(child).await,
    );
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_peers_take_turns_ipc() {
    takeover("pynng", Kind::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_peers_take_turns_tcp() {
    takeover("pynng", Kind::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libnanomsg_peers_take_turns_ipc() {
    takeover("nanomsg", Kind::Ipc).await;
}
