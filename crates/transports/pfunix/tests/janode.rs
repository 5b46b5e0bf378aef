//! Janode's Unix DGRAM transport as a real client: `node tests/janode-dgram.mjs` against an
//! in-process server with DGRAM Janus API and Admin API sockets. Skipped, loudly, when node or
//! janode (tests/clients/node_modules, installed by `npm ci` there) is not available.

mod common;

use common::*;
use jano_pfunix::SocketType::Dgram;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janode_unix_dgram() {
    let janode = repo_root().join("tests/clients/node_modules/janode/src/janode.js");
    let dgram = repo_root().join("tests/clients/node_modules/unix-dgram");
    if !janode.exists() || !dgram.exists() {
        eprintln!(
            "SKIPPED janode_unix_dgram: janode is not installed (run `npm ci` in tests/clients)"
        );
        return;
    }
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_ok {
        eprintln!("SKIPPED janode_unix_dgram: `node` is not installed");
        return;
    }
    let srv = Srv::start(Dgram, Dgram, Core::default()).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/janode-dgram.mjs");
    let child = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&srv.api)
        .arg(&srv.admin)
        .arg(ADMIN_SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("janode script did not finish within 60 s")
        .expect("node output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--- janode stdout\n{stdout}--- janode stderr\n{stderr}---");
    assert!(
        out.status.success() && stdout.lines().last() == Some("JANODE-DGRAM OK"),
        "janode over Unix DGRAM failed ({})",
        out.status
    );
    assert!(
        eventually(WAIT, || srv.server.clients() == 0).await,
        "janode's DGRAM client entry freed after destroy"
    );
    assert_eq!(srv.server.refused(), 0);
    srv.stop();
}
