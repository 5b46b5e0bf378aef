//! Plugins check their own signed tokens through `CoreServices` with the core's secret: only
//! in signed mode, only in their own realm.

use jano_runtime::PluginQueue;

#[test]
fn plugin_services_check_signed_tokens_in_their_realm() {
    let far = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 3600;
    let vr = "janus.plugin.videoroom";
    let off = PluginQueue::new().services_for(vr);
    assert!(!off.auth_is_signed());
    let good = jano_core::sign_token("s3", far, vr, &["room=1"]);
    assert!(
        !off.signature_contains(&good, "room=1"),
        "not in signed mode"
    );

    let mut q = PluginQueue::new();
    q.set_token_secret(Some("s3".into()));
    let on = q.services_for(vr);
    assert!(on.auth_is_signed());
    assert!(on.signature_contains(&good, "room=1"));
    assert!(!on.signature_contains(&good, "room=2"));
    let other_realm = jano_core::sign_token("s3", far, "janus.plugin.audiobridge", &["room=1"]);
    assert!(!on.signature_contains(&other_realm, "room=1"));
    assert!(!on.signature_contains("garbage", "room=1"));
}
