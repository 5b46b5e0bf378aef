//! Streaming's signalling through the plugin contract with a recording `CoreServices` (no
//! engine): mountpoints from the configuration file and from `create`, `list`/`info`/
//! `destroy`, the viewer requests and their errors. Media is covered by the engine test.

use jano_plugin::{
    HandleRef, Jcfg, Jsep, JsepType, LocalJsep, Map, Plugin, PluginResult, SessionRef, Value,
};
use jano_streaming::Streaming;
use serde_json::json;
use std::sync::Arc;

use jano_plugin::testing::{Pushed, RecordingServices as Rec};

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

struct T {
    rec: Arc<Rec>,
    st: Streaming,
    handles: Vec<(HandleRef, SessionRef)>,
}

impl T {
    fn new(config: Option<&str>) -> T {
        T::in_folder(config, None)
    }

    fn in_folder(config: Option<&str>, folder: Option<std::path::PathBuf>) -> T {
        let rec = Arc::new(Rec {
            folder,
            ..Rec::default()
        });
        let cfg = config.map(|c| Jcfg::parse(c, "test.jcfg").expect("config"));
        let st = Streaming::new(cfg.as_ref(), rec.clone());
        T {
            rec,
            st,
            handles: Vec::new(),
        }
    }

    fn attach(&mut self) -> usize {
        let h = HandleRef {
            session_id: 1,
            handle_id: self.handles.len() as u64 + 10,
            opaque_id: None,
            token: None,
        };
        let s = self.st.create_session(&h).expect("attach");
        self.handles.push((h, s));
        self.handles.len() - 1
    }

    fn sync(&self, i: usize, body: Value) -> Map<String, Value> {
        let (h, s) = &self.handles[i];
        match self.st.handle_message(h, s, "tx", obj(body), None) {
            PluginResult::Ok(m) => m,
            other => panic!("not synchronous: {other:?}"),
        }
    }

    /// An asynchronous request: the event answering it.
    fn req(&self, i: usize, body: Value, jsep: Option<Jsep>) -> Pushed {
        let (h, s) = &self.handles[i];
        match self.st.handle_message(h, s, "tx", obj(body), jsep) {
            PluginResult::OkWait(_) => {}
            other => panic!("not asynchronous: {other:?}"),
        }
        let mut all = self.rec.pushed.lock().unwrap();
        let i = all
            .iter()
            .rposition(|p| p.handle == h.handle_id)
            .expect("an event");
        all.remove(i)
    }
}

fn code(m: &Map<String, Value>) -> Option<(u64, String)> {
    Some((
        m.get("error_code")?.as_u64()?,
        m.get("error")?.as_str()?.to_owned(),
    ))
}

const CONFIG: &str = "general: { string_ids = false\n rtp_port_range = \"31000-31100\" }\n\
rtp-sample: {\n type = \"rtp\"\n id = 1\n description = \"Opus/VP8 live stream\"\n \
metadata = \"md\"\n audio = true\n video = true\n audioport = 0\n audiopt = 111\n \
audiocodec = \"opus\"\n videoport = 0\n videopt = 100\n videocodec = \"vp8\"\n secret = \"adminpwd\"\n}\n\
file-sample: {\n type = \"live\"\n id = 2\n filename = \"/nonexistent.alaw\"\n audio = true\n}\n";

#[test]
fn mountpoints_from_config_and_create() {
    let mut t = T::new(Some(CONFIG));
    let a = t.attach();
    // The rtp mountpoint of the file is there; the file-based one is not (its file is missing).
    let d = t.sync(a, json!({"request": "list"}));
    let list = d["list"].as_array().expect("list");
    assert_eq!(list.len(), 1, "{d:?}");
    assert_eq!(list[0]["id"], 1);
    assert_eq!(list[0]["description"], "Opus/VP8 live stream");
    assert_eq!(list[0]["metadata"], "md");
    assert_eq!(list[0]["type"], "live");
    let media = list[0]["media"].as_array().expect("media");
    assert_eq!(media.len(), 2);
    assert_eq!(media[0]["type"], "audio");
    // info without the secret hides ports; with it, shows them.
    let d = t.sync(a, json!({"request": "info", "id": 1}));
    assert_eq!(d["streaming"], "info");
    assert!(d["info"]["media"][0].get("port").is_none(), "{d:?}");
    assert_eq!(d["info"]["media"][1]["codec"], "vp8");
    let d = t.sync(a, json!({"request": "info", "id": 1, "secret": "adminpwd"}));
    // Port 0 takes one from rtp_port_range.
    let p = d["info"]["media"][0]["port"].as_u64().unwrap_or(0);
    assert!((31000..=31100).contains(&p), "{d:?}");
    assert_eq!(d["info"]["secret"], "adminpwd");
    // Errors.
    let d = t.sync(a, json!({"request": "info", "id": 99}));
    assert_eq!(code(&d), Some((455, "No such mountpoint/stream 99".into())));
    let d = t.sync(a, json!({"request": "info", "id": "x"}));
    assert_eq!(
        code(&d),
        Some((
            454,
            "Invalid element type (id should be a positive integer)".into()
        ))
    );
    let d = t.sync(a, json!({"request": "destroy", "id": 1}));
    assert_eq!(
        code(&d),
        Some((453, "Missing mandatory element (secret)".into()))
    );
    let d = t.sync(a, json!({"request": "destroy", "id": 1, "secret": "no"}));
    assert_eq!(code(&d), Some((457, "Unauthorized (wrong secret)".into())));
    let d = t.sync(a, json!({"request": "nope"}));
    assert_eq!(code(&d), Some((452, "Unknown request 'nope'".into())));
    let d = t.sync(a, json!({}));
    assert_eq!(
        code(&d),
        Some((453, "Missing mandatory element (request)".into()))
    );
    // create: multistream (ports listed), legacy (flat ports and the deprecation warning).
    let d = t.sync(
        a,
        json!({"request": "create", "type": "rtp", "id": 5, "name": "multi", "media": [
            {"type": "audio", "mid": "a", "port": 0, "pt": 111, "codec": "opus"},
            {"type": "video", "mid": "v", "port": 0, "pt": 96, "codec": "vp8"}]}),
    );
    assert_eq!(d["streaming"], "created", "{d:?}");
    assert_eq!(d["created"], "multi");
    assert_eq!(d["stream"]["id"], 5);
    let ports = d["stream"]["ports"].as_array().expect("ports");
    assert_eq!(ports.len(), 2);
    assert_eq!(ports[1]["mid"], "v");
    assert!(ports[1]["port"].as_u64().unwrap_or(0) > 0);
    let d = t.sync(
        a,
        json!({"request": "create", "type": "rtp", "id": 5, "audio": true, "audiopt": 0, "audiocodec": "pcmu"}),
    );
    assert_eq!(
        code(&d),
        Some((456, "A stream with the provided ID already exists".into()))
    );
    let d = t.sync(
        a,
        json!({"request": "create", "type": "rtp", "audio": true, "audioport": 0, "audiopt": 0, "audiocodec": "pcmu"}),
    );
    assert_eq!(d["warning"], "deprecated_api", "{d:?}");
    assert!(d["stream"]["audio_port"].as_u64().unwrap_or(0) > 0, "{d:?}");
    let d = t.sync(a, json!({"request": "create", "type": "rtsp"}));
    assert_eq!(
        code(&d),
        Some((453, "Missing mandatory element (url)".into()))
    );
    let d = t.sync(
        a,
        json!({"request": "create", "type": "rtsp", "url": "rtsp://127.0.0.1:9/x"}),
    );
    assert_eq!(d["error_code"], 456, "neither audio nor video: {d:?}");
    // Nothing listens on the discard port: the connection fails and so does the create.
    let d = t.sync(
        a,
        json!({"request": "create", "type": "rtsp", "url": "rtsp://127.0.0.1:9/x", "video": true}),
    );
    assert_eq!(
        code(&d),
        Some((456, "Error creating 'RTSP' stream".into())),
        "{d:?}"
    );
    let d = t.sync(
        a,
        json!({"request": "create", "type": "rtp", "video": true, "videopt": 96}),
    );
    assert_eq!(d["error_code"], 456, "no codec: {d:?}");
    // destroy with the secret.
    let d = t.sync(
        a,
        json!({"request": "destroy", "id": 1, "secret": "adminpwd"}),
    );
    assert_eq!(obj(json!({"streaming": "destroyed", "destroyed": 1})), d);
    let d = t.sync(a, json!({"request": "list"}));
    assert_eq!(d["list"].as_array().map(Vec::len), Some(2));
}

#[test]
fn viewer_requests() {
    let mut t = T::new(None);
    let adm = t.attach();
    let d = t.sync(
        adm,
        json!({"request": "create", "type": "rtp", "id": 7, "pin": "1234", "media": [
            {"type": "audio", "mid": "a", "port": 0, "pt": 111, "codec": "opus"},
            {"type": "video", "mid": "v", "port": 0, "pt": 96, "codec": "vp8"},
            {"type": "data", "mid": "d", "port": 0}]}),
    );
    assert_eq!(d["streaming"], "created", "{d:?}");
    let v = t.attach();
    let ev = t.req(v, json!({"request": "watch", "id": 8}), None);
    assert_eq!(
        code(&ev.data),
        Some((455, "No such mountpoint/stream 8".into()))
    );
    let ev = t.req(v, json!({"request": "watch", "id": 7}), None);
    assert_eq!(
        code(&ev.data),
        Some((453, "Missing mandatory element (pin)".into()))
    );
    let ev = t.req(v, json!({"request": "watch", "id": 7, "pin": "0"}), None);
    assert_eq!(
        code(&ev.data),
        Some((457, "Unauthorized (wrong pin)".into()))
    );
    let ev = t.req(v, json!({"request": "start"}), None);
    assert_eq!(
        code(&ev.data),
        Some((455, "Can't start: no mountpoint set".into()))
    );
    let ev = t.req(
        v,
        json!({"request": "watch", "id": 7, "pin": "1234", "media": [5]}),
        None,
    );
    assert_eq!(
        code(&ev.data),
        Some((
            454,
            "The media array must only contain strings (mid values)".into()
        ))
    );
    // watch: an offer with one m-line per stream (only the video one when asked), sendonly.
    let ev = t.req(
        v,
        json!({"request": "watch", "id": 7, "pin": "1234", "media": ["v", "d"]}),
        None,
    );
    assert_eq!(
        Value::Object(ev.data.clone()),
        json!({"streaming": "event", "result": {"status": "preparing"}})
    );
    match &ev.jsep {
        Some(LocalJsep::Offer { media, data, .. }) => {
            assert_eq!(media.len(), 1);
            assert!(media[0].send && !media[0].recv);
            assert_eq!(media[0].codec.as_deref(), Some("vp8"));
            assert!(data, "the data stream asks for a data channel");
        }
        other => panic!("expected an offer: {other:?}"),
    }
    let ev = t.req(v, json!({"request": "watch", "id": 7, "pin": "1234"}), None);
    assert_eq!(
        code(&ev.data),
        Some((460, "Already watching mountpoint 7".into()))
    );
    let answer = Jsep {
        kind: JsepType::Answer,
        sdp: "v=0\r\n".into(),
        extra: Map::new(),
    };
    let ev = t.req(v, json!({"request": "start"}), Some(answer));
    assert_eq!(ev.data["result"]["status"], "starting");
    let ev = t.req(v, json!({"request": "pause"}), None);
    assert_eq!(ev.data["result"]["status"], "pausing");
    let d = t.sync(adm, json!({"request": "info", "id": 7}));
    assert_eq!(d["info"]["viewers"], 1);
    let ev = t.req(v, json!({"request": "stop"}), None);
    assert_eq!(ev.data["result"]["status"], "stopping");
    assert!(t
        .rec
        .closed
        .lock()
        .unwrap()
        .contains(&t.handles[v].0.handle_id));
    let d = t.sync(adm, json!({"request": "info", "id": 7}));
    assert_eq!(d["info"]["viewers"], 0);
    // A viewer of a destroyed mountpoint hears `stopped` and is hung up.
    let v2 = t.attach();
    t.req(
        v2,
        json!({"request": "watch", "id": 7, "pin": "1234"}),
        None,
    );
    let d = t.sync(adm, json!({"request": "destroy", "id": 7}));
    assert_eq!(d["streaming"], "destroyed");
    let h2 = t.handles[v2].0.handle_id;
    assert!(t
        .rec
        .pushed
        .lock()
        .unwrap()
        .iter()
        .any(|p| p.handle == h2 && p.data["result"]["status"] == "stopped"));
    assert!(t.rec.closed.lock().unwrap().contains(&h2));
    let d = t.sync(v2, json!({"request": "nope"}));
    assert_eq!(code(&d), Some((452, "Unknown request 'nope'".into())));
}

#[test]
fn edit_enable_disable_kick_all() {
    let mut t = T::new(None);
    let adm = t.attach();
    let d = t.sync(
        adm,
        json!({"request": "create", "type": "rtp", "id": 9, "secret": "s", "metadata": "m1",
               "media": [{"type": "audio", "mid": "a", "port": 0, "pt": 111, "codec": "opus"}]}),
    );
    assert_eq!(d["streaming"], "created", "{d:?}");
    let v = t.attach();
    t.req(v, json!({"request": "watch", "id": 9}), None);
    // edit: nothing changes without the secret.
    let d = t.sync(
        adm,
        json!({"request": "edit", "id": 9, "new_description": "x", "secret": "no"}),
    );
    assert_eq!(code(&d), Some((457, "Unauthorized (wrong secret)".into())));
    let d = t.sync(adm, json!({"request": "info", "id": 9, "secret": "s"}));
    assert_eq!(d["info"]["description"], "9");
    let d = t.sync(
        adm,
        json!({"request": "edit", "id": 9, "secret": "s", "new_description": "cam",
               "new_metadata": "m2", "new_pin": "p", "edited_event": true}),
    );
    assert_eq!(
        Value::Object(d),
        json!({"streaming": "edited", "id": 9, "permanent": false})
    );
    let vh = t.handles[v].0.handle_id;
    assert!(t.rec.pushed.lock().unwrap().iter().any(|p| p.handle == vh
        && Value::Object(p.data.clone()) == json!({"event": "edited", "id": 9, "metadata": "m2"})));
    let d = t.sync(adm, json!({"request": "info", "id": 9, "secret": "s"}));
    assert_eq!(d["info"]["description"], "cam");
    assert_eq!(d["info"]["metadata"], "m2");
    assert_eq!(d["info"]["pin"], "p");
    // enable/disable.
    let d = t.sync(adm, json!({"request": "disable", "id": 9, "secret": "s"}));
    assert_eq!(Value::Object(d), json!({"streaming": "ok"}));
    let d = t.sync(adm, json!({"request": "list"}));
    assert_eq!(d["list"][0]["enabled"], false);
    let d = t.sync(adm, json!({"request": "enable", "id": 9}));
    assert_eq!(
        code(&d),
        Some((453, "Missing mandatory element (secret)".into()))
    );
    t.sync(adm, json!({"request": "enable", "id": 9, "secret": "s"}));
    let d = t.sync(adm, json!({"request": "info", "id": 9}));
    assert_eq!(d["info"]["enabled"], true);
    // kick_all: the viewer hears it and is hung up.
    let d = t.sync(adm, json!({"request": "kick_all", "id": 9, "secret": "s"}));
    assert_eq!(Value::Object(d), json!({"streaming": "kicked_all"}));
    assert!(t.rec.pushed.lock().unwrap().iter().any(|p| p.handle == vh
        && p.data.get("result").and_then(|r| r.get("status")) == Some(&json!("kicked_all"))));
    assert!(t.rec.closed.lock().unwrap().contains(&vh));
    let d = t.sync(adm, json!({"request": "info", "id": 9}));
    assert_eq!(d["info"]["viewers"], 0);
}

#[test]
fn configure_and_switch() {
    let mut t = T::new(None);
    let adm = t.attach();
    for (id, vcodec) in [(20, "vp8"), (21, "vp8"), (22, "vp9")] {
        let d = t.sync(
            adm,
            json!({"request": "create", "type": "rtp", "id": id, "media": [
                {"type": "audio", "mid": "a", "port": 0, "pt": 111, "codec": "opus"},
                {"type": "video", "mid": "v", "port": 0, "pt": 96, "codec": vcodec}]}),
        );
        assert_eq!(d["streaming"], "created", "{d:?}");
    }
    let v = t.attach();
    let ev = t.req(v, json!({"request": "configure", "video": false}), None);
    assert_eq!(
        code(&ev.data),
        Some((455, "Can't configure: not on a mountpoint".into()))
    );
    let ev = t.req(v, json!({"request": "switch", "id": 21}), None);
    assert_eq!(
        code(&ev.data),
        Some((455, "Can't switch: not on a mountpoint".into()))
    );
    t.req(v, json!({"request": "watch", "id": 20}), None);
    let ev = t.req(
        v,
        json!({"request": "configure", "streams": [{"mid": "v", "send": false}]}),
        None,
    );
    assert_eq!(
        Value::Object(ev.data),
        json!({"streaming": "event", "result": {"event": "configured"}})
    );
    let ev = t.req(v, json!({"request": "switch", "id": 22}), None);
    assert_eq!(
        code(&ev.data),
        Some((
            458,
            "Can't switch: the target mountpoint's streams differ".into()
        ))
    );
    let ev = t.req(v, json!({"request": "switch", "id": 99}), None);
    assert_eq!(
        code(&ev.data),
        Some((455, "No such mountpoint/stream 99".into()))
    );
    let ev = t.req(v, json!({"request": "switch", "id": 21}), None);
    assert_eq!(
        Value::Object(ev.data),
        json!({"streaming": "event", "result": {"switched": "ok", "id": 21}})
    );
    let d = t.sync(adm, json!({"request": "info", "id": 21}));
    assert_eq!(d["info"]["viewers"], 1);
    let d = t.sync(adm, json!({"request": "info", "id": 20}));
    assert_eq!(d["info"]["viewers"], 0);
}

#[test]
fn file_mountpoints_from_config() {
    let dir = std::env::temp_dir().join(format!("jano-st-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("music.mulaw");
    std::fs::write(&file, vec![0x7fu8; 1600]).expect("write");
    let cfg = format!(
        "file-ondemand-sample: {{\n type = \"ondemand\"\n id = 3\n description = \"mu-law\"\n \
         filename = \"{}\"\n audio = true\n video = false\n secret = \"adminpwd\"\n}}\n",
        file.display()
    );
    let mut t = T::new(Some(&cfg));
    let a = t.attach();
    let d = t.sync(a, json!({"request": "list"}));
    assert_eq!(d["list"][0]["id"], 3, "{d:?}");
    assert_eq!(d["list"][0]["type"], "on demand", "{d:?}");
    assert!(d["list"][0].get("media").is_none(), "{d:?}");
    let d = t.sync(a, json!({"request": "info", "id": 3, "secret": "adminpwd"}));
    assert_eq!(d["info"]["type"], "on demand", "{d:?}");
    assert_eq!(d["info"]["filename"], file.display().to_string(), "{d:?}");
    assert_eq!(d["info"]["media"][0]["codec"], "pcmu", "{d:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn permanent_mountpoints_are_saved_to_the_configuration() {
    let dir = std::env::temp_dir().join(format!("jano-st-perm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("janus.plugin.streaming.jcfg");
    let start = "general: {\n rtp_port_range = \"32000-32100\"\n}\n";
    std::fs::write(&file, start).expect("write");
    let mut t = T::in_folder(Some(start), Some(dir.clone()));
    let a = t.attach();
    let d = t.sync(
        a,
        json!({"request": "create", "type": "rtp", "id": 77, "name": "saved", "permanent": true,
            "description": "kept", "secret": "s", "media": [
            {"type": "audio", "mid": "a", "port": 0, "pt": 111, "codec": "opus"}]}),
    );
    assert_eq!(d["permanent"], true, "{d:?}");
    let text = std::fs::read_to_string(&file).expect("saved");
    assert!(
        text.contains("rtp_port_range"),
        "the rest of the file stays: {text}"
    );
    assert!(text.contains("saved"), "{text}");
    let d = t.sync(
        a,
        json!({"request": "edit", "id": 77, "secret": "s", "new_description": "changed",
            "permanent": true}),
    );
    assert_eq!(d["permanent"], true, "{d:?}");
    // A server started on the saved file has the mountpoint, as edited.
    let text = std::fs::read_to_string(&file).expect("saved");
    let mut t2 = T::new(Some(&text));
    let b = t2.attach();
    let d = t2.sync(b, json!({"request": "info", "id": 77, "secret": "s"}));
    assert_eq!(d["info"]["description"], "changed", "{d:?} from {text}");
    assert_eq!(d["info"]["media"][0]["codec"], "opus", "{d:?}");
    let d = t.sync(
        a,
        json!({"request": "destroy", "id": 77, "secret": "s", "permanent": true}),
    );
    assert_eq!(d["streaming"], "destroyed", "{d:?}");
    let text = std::fs::read_to_string(&file).expect("saved");
    assert!(!text.contains("saved"), "{text}");
    assert!(text.contains("rtp_port_range"), "{text}");
    // Without a configuration folder: Janus's 470.
    let mut t3 = T::new(None);
    let c = t3.attach();
    let d = t3.sync(
        c,
        json!({"request": "create", "type": "rtp", "permanent": true, "media": [
            {"type": "audio", "mid": "a", "port": 0, "pt": 111, "codec": "opus"}]}),
    );
    assert_eq!(
        code(&d),
        Some((
            470,
            "No configuration file, can't create permanent mountpoint".into()
        ))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A plain RTP packet: payload type, sequence number, and a payload of `n` repeated.
fn rtp(pt: u8, seq: u16, n: u8) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend_from_slice(&[n; 40]);
    p
}

#[test]
fn recording_to_mjr() {
    let dir = std::env::temp_dir().join(format!("jano-st-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut t = T::new(None);
    let a = t.attach();
    let d = t.sync(
        a,
        json!({"request": "create", "type": "rtp", "id": 9, "secret": "s", "media": [
            {"type": "audio", "mid": "a", "port": 0, "pt": 111, "codec": "opus"},
            {"type": "video", "mid": "v", "port": 0, "pt": 96, "codec": "vp8"}]}),
    );
    let ports: Vec<u16> = d["stream"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| p["port"].as_u64().expect("port") as u16)
        .collect();
    // Errors first, as Janus words them.
    let d = t.sync(a, json!({"request": "recording", "id": 9}));
    assert_eq!(
        code(&d),
        Some((453, "Missing mandatory element (action)".into()))
    );
    let d = t.sync(a, json!({"request": "recording", "id": 9, "action": "go"}));
    assert_eq!(
        code(&d),
        Some((454, "Invalid action (should be start|stop)".into()))
    );
    let d = t.sync(
        a,
        json!({"request": "recording", "id": 99, "action": "start"}),
    );
    assert_eq!(d["error_code"], 455, "{d:?}");
    let d = t.sync(
        a,
        json!({"request": "recording", "id": 9, "action": "start", "secret": "x"}),
    );
    assert_eq!(d["error_code"], 457, "{d:?}");
    let d = t.sync(
        a,
        json!({"request": "recording", "id": 9, "action": "start", "secret": "s"}),
    );
    assert_eq!(
        code(&d),
        Some((452, "Missing audio, video and/or data".into()))
    );
    let base = |m: &str| dir.join(format!("rec-{m}")).to_string_lossy().into_owned();
    let d = t.sync(
        a,
        json!({"request": "recording", "id": 9, "action": "start", "secret": "s",
            "media": [{"mid": "a", "filename": base("a")}, {"mid": "v", "filename": base("v")}]}),
    );
    assert_eq!(d["streaming"], "ok", "{d:?}");
    let d = t.sync(
        a,
        json!({"request": "recording", "id": 9, "action": "start", "secret": "s",
            "audio": base("again")}),
    );
    assert_eq!(d["error_code"], 452, "already recording: {d:?}");
    // The source sends; every packet lands in its stream's file.
    let src = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    for i in 0..20u16 {
        src.send_to(&rtp(111, 100 + i, 1), ("127.0.0.1", ports[0]))
            .expect("send");
        src.send_to(&rtp(96, 500 + i, 2), ("127.0.0.1", ports[1]))
            .expect("send");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // The reader (a thread of its own here) queues each packet as it comes.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let d = t.sync(
        a,
        json!({"request": "recording", "id": 9, "action": "stop", "secret": "s",
            "audio": true, "video": true}),
    );
    assert_eq!(d["streaming"], "ok", "{d:?}");
    for (m, byte, codec) in [("a", 1u8, "opus"), ("v", 2, "vp8")] {
        let path = dir.join(format!("rec-{m}.mjr"));
        let rec = jano_mjr::read_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(rec.info.codec, codec);
        // The recorder numbers its frames from its own start, gaplessly.
        let seqs: Vec<u16> = rec.frames.iter().filter_map(|f| f.rtp_seq()).collect();
        assert_eq!(seqs.len(), 20, "{m}: {seqs:?}");
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
            "{m}: {seqs:?}"
        );
        assert!(rec
            .frames
            .iter()
            .all(|f| f.data.get(12..) == Some(&[byte; 40][..])));
    }
    // A file mountpoint cannot record.
    let file = dir.join("x.alaw");
    std::fs::write(&file, [0u8; 320]).expect("write");
    t.sync(
        a,
        json!({"request": "create", "type": "live", "id": 10, "filename": file.to_string_lossy(),
            "audio": true}),
    );
    let d = t.sync(
        a,
        json!({"request": "recording", "id": 10, "action": "start", "audio": "x"}),
    );
    assert_eq!(
        code(&d),
        Some((
            452,
            "Recording is only available on RTP-based live streams".into()
        ))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn srtp_sources_are_decrypted() {
    const KEY: &str = "WbTBosdVUZqEb6Htqhn+m3z7wUh4RJVR8nE15GbN";
    let dir = std::env::temp_dir().join(format!("jano-st-srtp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut t = T::new(None);
    let a = t.attach();
    let bad = |suite: u64, crypto: &str| {
        json!({"request": "create", "type": "rtp", "srtpsuite": suite, "srtpcrypto": crypto,
            "media": [{"type": "audio", "mid": "a", "port": 0, "pt": 111, "codec": "opus"}]})
    };
    let d = t.sync(a, bad(64, KEY));
    assert_eq!(
        code(&d),
        Some((456, "Can't add 'rtp' stream, invalid SRTP suite...".into()))
    );
    let d = t.sync(a, bad(80, "bm90IGEga2V5"));
    assert_eq!(
        code(&d),
        Some((456, "Can't add 'rtp' stream, invalid SRTP crypto...".into()))
    );
    let d = t.sync(
        a,
        json!({"request": "create", "type": "rtp", "id": 11, "srtpsuite": 80, "srtpcrypto": KEY,
            "media": [{"type": "audio", "mid": "a", "port": 0, "pt": 111, "codec": "opus"}]}),
    );
    let port = d["stream"]["ports"][0]["port"].as_u64().expect("port") as u16;
    let file = dir.join("srtp").to_string_lossy().into_owned();
    let d = t.sync(
        a,
        json!({"request": "recording", "id": 11, "action": "start", "audio": file}),
    );
    assert_eq!(d["streaming"], "ok", "{d:?}");
    let src = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut tx = jano_plugin::srtp::SrtpSender::new(jano_plugin::srtp::SrtpSuite::Sha1_80, KEY)
        .expect("sender");
    for i in 0..10u16 {
        let p = tx.protect(&rtp(111, 300 + i, 7)).expect("protect");
        src.send_to(&p, ("127.0.0.1", port)).expect("send");
        // Plain RTP on a protected stream is not from the key holder: dropped.
        src.send_to(&rtp(111, 900 + i, 9), ("127.0.0.1", port))
            .expect("send");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let d = t.sync(
        a,
        json!({"request": "recording", "id": 11, "action": "stop", "audio": true}),
    );
    assert_eq!(d["streaming"], "ok", "{d:?}");
    let rec = jano_mjr::read_file(dir.join("srtp.mjr")).expect("recording");
    assert_eq!(rec.frames.len(), 10, "only the protected packets");
    assert!(
        rec.frames
            .iter()
            .all(|f| f.data.get(12..) == Some(&[7u8; 40][..])),
        "decrypted payloads"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn collision_keeps_the_current_source() {
    let dir = std::env::temp_dir().join(format!("jano-st-coll-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut t = T::new(None);
    let a = t.attach();
    let with_ssrc = |ssrc: u32, seq: u16| {
        let mut p = rtp(111, seq, 3);
        p.splice(8..12, ssrc.to_be_bytes());
        p
    };
    let src = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    // A long window: the second SSRC is dropped; a short one that has passed: it takes over.
    for (id, window, pause_ms, want) in [(21u64, 60_000u64, 0u64, 5usize), (22, 100, 400, 10)] {
        let d = t.sync(
            a,
            json!({"request": "create", "type": "rtp", "id": id, "collision": window, "media": [
                {"type": "audio", "mid": "a", "port": 0, "pt": 111, "codec": "opus"}]}),
        );
        let port = d["stream"]["ports"][0]["port"].as_u64().expect("port") as u16;
        let file = dir.join(format!("c{id}")).to_string_lossy().into_owned();
        t.sync(
            a,
            json!({"request": "recording", "id": id, "action": "start", "audio": file}),
        );
        for i in 0..5 {
            src.send_to(&with_ssrc(0xAAAA, i), ("127.0.0.1", port))
                .expect("send");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(pause_ms));
        for i in 0..5 {
            src.send_to(&with_ssrc(0xBBBB, 100 + i), ("127.0.0.1", port))
                .expect("send");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        t.sync(
            a,
            json!({"request": "recording", "id": id, "action": "stop", "audio": true}),
        );
        let rec = jano_mjr::read_file(dir.join(format!("c{id}.mjr"))).expect("recording");
        assert_eq!(rec.frames.len(), want, "collision {window} ms");
        let d = t.sync(a, json!({"request": "info", "id": id}));
        assert_eq!(d["info"]["collision"], window, "{d:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn multicast_streams_join_their_group() {
    let dir = std::env::temp_dir().join(format!("jano-st-mcast-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut t = T::new(None);
    let a = t.attach();
    let group = std::net::Ipv4Addr::new(239, 255, 77, (std::process::id() % 200) as u8 + 1);
    let d = t.sync(
        a,
        json!({"request": "create", "type": "rtp", "id": 61, "media": [
            {"type": "audio", "mid": "a", "port": 0, "mcast": group.to_string(),
             "iface": "127.0.0.1", "pt": 111, "codec": "opus"}]}),
    );
    assert_eq!(d["stream"]["ports"][0]["host"], group.to_string(), "{d:?}");
    let port = d["stream"]["ports"][0]["port"].as_u64().expect("port") as u16;
    let file = dir.join("m").to_string_lossy().into_owned();
    t.sync(
        a,
        json!({"request": "recording", "id": 61, "action": "start", "audio": file}),
    );
    // The source multicasts on the loopback interface.
    let src = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    {
        use std::os::fd::AsRawFd;
        let iface = libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        };
        // SAFETY: a valid socket and an in_addr option value.
        let r = unsafe {
            libc::setsockopt(
                src.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_MULTICAST_IF,
                (&iface as *const libc::in_addr).cast(),
                std::mem::size_of::<libc::in_addr>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "IP_MULTICAST_IF");
    }
    src.set_multicast_loop_v4(true).expect("loop");
    for i in 0..8u16 {
        src.send_to(&rtp(111, i, 4), (group, port)).expect("send");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    t.sync(
        a,
        json!({"request": "recording", "id": 61, "action": "stop", "audio": true}),
    );
    let rec = jano_mjr::read_file(dir.join("m.mjr")).expect("recording");
    assert_eq!(rec.frames.len(), 8, "every multicast packet");
    let d = t.sync(
        a,
        json!({"request": "create", "type": "rtp", "media": [
            {"type": "audio", "mid": "a", "port": 0, "mcast": "10.0.0.1", "pt": 0,
             "codec": "pcmu"}]}),
    );
    assert_eq!(d["error_code"], 456, "not a multicast group: {d:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
