//! TextRoom through the plugin contract with a recording `CoreServices`: the offer on `setup`,
//! management over the Janus API, chat over the data channel (fed to the handles' media
//! callback), who receives what and in which order, history, errors, permanent rooms.

use jano_plugin::testing::{handle, obj, RecordingServices};
use jano_plugin::{
    DataMessage, HandleRef, Jcfg, LocalJsep, Map, MediaCtx, Outbox, Plugin, PluginResult,
    SessionRef, Value,
};
use jano_textroom::TextRoom;
use serde_json::json;
use std::sync::Arc;

struct T {
    rec: Arc<RecordingServices>,
    tr: TextRoom,
    handles: Vec<(HandleRef, SessionRef)>,
}

impl T {
    fn new(config: &str, folder: Option<std::path::PathBuf>) -> T {
        let rec = Arc::new(RecordingServices::with_folder(folder));
        let cfg = Jcfg::parse(config, "test.jcfg").expect("config");
        let tr = TextRoom::new(Some(&cfg), rec.clone());
        T {
            rec,
            tr,
            handles: Vec::new(),
        }
    }

    fn attach(&mut self) -> usize {
        let h = handle(self.handles.len() as u64 + 1);
        let s = self.tr.create_session(&h).expect("session");
        self.handles.push((h, s));
        self.handles.len() - 1
    }

    fn api(&self, i: usize, body: Value) -> PluginResult {
        let (h, s) = &self.handles[i];
        self.tr.handle_message(h, s, "tx", obj(body), None)
    }

    fn sync(&self, i: usize, body: Value) -> Map<String, Value> {
        match self.api(i, body) {
            PluginResult::Ok(m) => m,
            other => panic!("not synchronous: {other:?}"),
        }
    }

    /// Sends a text message on handle `i`'s data channel.
    fn dc(&self, i: usize, text: &str) {
        let (h, s) = &self.handles[i];
        let mut out = Outbox::default();
        let mut ctx = MediaCtx::new(h, &mut out);
        s.incoming_data(
            &mut ctx,
            &DataMessage {
                label: None,
                protocol: None,
                binary: false,
                buffer: text.as_bytes(),
            },
        );
    }

    /// What handle `i` received on its data channel since the last `clear`, parsed.
    fn got(&self, i: usize) -> Vec<Value> {
        self.rec
            .data_to(self.handles[i].0.handle_id)
            .iter()
            .map(|t| serde_json::from_str(t).expect("json"))
            .collect()
    }

    fn request(&self, i: usize, body: Value) -> Value {
        self.rec.clear();
        self.dc(i, &body.to_string());
        let got = self.got(i);
        got.last().cloned().unwrap_or(Value::Null)
    }
}

const CFG: &str = "general: { json = \"compact\" }\nroom-1234: { description = \"Demo Room\" secret = \"adminpwd\" }\n";

#[test]
fn setup_offers_a_data_channel_once() {
    let mut t = T::new(CFG, None);
    let a = t.attach();
    assert!(matches!(
        t.api(a, json!({"request": "setup"})),
        PluginResult::OkWait(_)
    ));
    let ev = t.rec.pushed_to(1);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].transaction.as_deref(), Some("tx"));
    assert_eq!(
        Value::Object(ev[0].data.clone()),
        json!({"textroom": "event", "result": "ok"})
    );
    match &ev[0].jsep {
        Some(LocalJsep::Offer {
            media,
            data,
            restart,
            ..
        }) => {
            assert!(media.is_empty());
            assert!(*data);
            assert!(!restart);
        }
        other => panic!("no offer: {other:?}"),
    }
    t.api(a, json!({"request": "setup"}));
    let ev = t.rec.pushed_to(1);
    assert_eq!(
        Value::Object(ev[1].data.clone()),
        json!({"textroom": "error", "error_code": 416, "error": "PeerConnection already setup"})
    );
    t.api(a, json!({"request": "restart"}));
    let ev = t.rec.pushed_to(1);
    assert!(matches!(
        ev[2].jsep,
        Some(LocalJsep::Offer { restart: true, .. })
    ));
    t.api(a, json!({"request": "ack"}));
    let ev = t.rec.pushed_to(1);
    assert!(ev[3].jsep.is_none());
    // Chat requests are not for the Janus API.
    for r in ["join", "message", "leave", "nope"] {
        let m = t.sync(a, json!({"request": r}));
        assert_eq!(m.get("error_code"), Some(&json!(415)), "{r}");
        assert_eq!(
            m.get("error"),
            Some(&json!(format!("Unknown request '{r}'")))
        );
        assert_eq!(m.get("textroom"), Some(&json!("event")));
    }
    let m = t.sync(a, json!({"nope": 1}));
    assert_eq!(m.get("error_code"), Some(&json!(413)));
}

#[test]
fn chat_in_a_room() {
    let mut t = T::new(CFG, None);
    let (a, b, c) = (t.attach(), t.attach(), t.attach());
    // Management over the Janus API.
    let m = t.sync(
        a,
        json!({"request": "create", "room": 7, "description": "r", "history": 2, "secret": "s"}),
    );
    assert_eq!(
        Value::Object(m),
        json!({"textroom": "created", "room": 7, "permanent": false})
    );
    let m = t.sync(a, json!({"request": "exists", "room": 7}));
    assert_eq!(m.get("exists"), Some(&json!(true)));
    let m = t.sync(a, json!({"request": "list"}));
    let list = m
        .get("list")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert_eq!(list.len(), 2);
    assert!(list.contains(&json!({"room": 7, "description": "r", "pin_required": false, "num_participants": 0, "history": 2})));

    let r = t.request(a, json!({"textroom": "join", "transaction": "j1", "room": 7, "username": "alice", "display": "Alice"}));
    assert_eq!(
        r,
        json!({"textroom": "success", "participants": [], "transaction": "j1"})
    );
    // The joiner hears its own join before the reply.
    assert_eq!(
        t.got(a)[0],
        json!({"textroom": "join", "room": 7, "username": "alice", "display": "Alice"})
    );
    let r = t.request(
        b,
        json!({"textroom": "join", "transaction": "j2", "room": 7, "username": "bob"}),
    );
    assert_eq!(
        r.get("participants"),
        Some(&json!([{"username": "alice", "display": "Alice"}]))
    );
    assert_eq!(
        t.got(a),
        vec![json!({"textroom": "join", "room": 7, "username": "bob"})]
    );

    // To everyone, the sender included; kept for newcomers with the display name.
    let r = t.request(
        a,
        json!({"textroom": "message", "transaction": "m1", "room": 7, "text": "hi all"}),
    );
    assert_eq!(r, json!({"textroom": "success", "transaction": "m1"}));
    for i in [a, b] {
        let m = &t.got(i)[0];
        assert_eq!(m.get("textroom"), Some(&json!("message")));
        assert_eq!(m.get("from"), Some(&json!("alice")));
        assert_eq!(m.get("text"), Some(&json!("hi all")));
        assert_eq!(m.get("whisper"), None);
        assert_eq!(
            m.get("date").and_then(Value::as_str).map(str::len),
            Some(24)
        );
    }
    // A whisper, with `ack: false`: only bob hears it, and alice gets no reply.
    t.rec.clear();
    t.dc(a, &json!({"textroom": "message", "transaction": "m2", "room": 7, "text": "psst", "to": "bob", "ack": false}).to_string());
    assert!(t.got(a).is_empty());
    let m = &t.got(b)[0];
    assert_eq!(m.get("whisper"), Some(&json!(true)));
    let r = t.request(a, json!({"textroom": "message", "transaction": "m3", "room": 7, "text": "x", "tos": ["bob", "nobody"]}));
    assert_eq!(r.get("sent"), Some(&json!({"bob": true, "nobody": false})));

    // Two more public messages: the history keeps the last two.
    t.request(
        b,
        json!({"textroom": "message", "transaction": "m4", "room": 7, "text": "two"}),
    );
    t.request(
        b,
        json!({"textroom": "message", "transaction": "m5", "room": 7, "text": "three"}),
    );
    t.rec.clear();
    t.dc(
        c,
        &json!({"textroom": "join", "transaction": "j3", "room": 7, "username": "carol"})
            .to_string(),
    );
    let got = t.got(c);
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0].get("text"), Some(&json!("two")));
    assert_eq!(got[1].get("text"), Some(&json!("three")));
    assert_eq!(got[2].get("textroom"), Some(&json!("join")));
    assert_eq!(got[3].get("textroom"), Some(&json!("success")));

    // Announcement (secret), kick, listparticipants.
    let r = t.request(a, json!({"textroom": "announcement", "transaction": "a1", "room": 7, "text": "hear", "secret": "s"}));
    assert_eq!(r.get("textroom"), Some(&json!("success")));
    assert_eq!(t.got(b)[0].get("textroom"), Some(&json!("announcement")));
    let r = t.request(a, json!({"textroom": "kick", "transaction": "k1", "room": 7, "username": "carol", "secret": "s"}));
    assert_eq!(r.get("textroom"), Some(&json!("success")));
    assert_eq!(
        t.got(c),
        vec![json!({"textroom": "kicked", "room": 7, "username": "carol"})]
    );
    let m = t.sync(a, json!({"request": "listparticipants", "room": 7}));
    assert_eq!(
        m.get("participants")
            .and_then(Value::as_array)
            .map(Vec::len),
        Some(2)
    );
    // The kicked one is out: it can join again.
    let r = t.request(c, json!({"textroom": "join", "transaction": "j4", "room": 7, "username": "carol", "history": false}));
    assert_eq!(r.get("textroom"), Some(&json!("success")));

    // Leave; then a hang-up takes bob out of every room.
    let r = t.request(
        c,
        json!({"textroom": "leave", "transaction": "l1", "room": 7}),
    );
    assert_eq!(r, json!({"textroom": "success", "transaction": "l1"}));
    assert_eq!(
        t.got(a),
        vec![json!({"textroom": "leave", "room": 7, "username": "carol"})]
    );
    t.rec.clear();
    t.handles[b].1.hangup_media(&t.handles[b].0);
    assert_eq!(
        t.got(a),
        vec![json!({"textroom": "leave", "room": 7, "username": "bob"})]
    );
    t.rec.clear();
    assert!(t
        .tr
        .destroy_session(&t.handles[a].0, &t.handles[a].1)
        .is_ok());
    let m = t.sync(c, json!({"request": "listparticipants", "room": 7}));
    assert_eq!(m.get("participants"), Some(&json!([])));

    // Destroy: participants hear it.
    t.request(
        c,
        json!({"textroom": "join", "transaction": "j5", "room": 7, "username": "carol"}),
    );
    let m = t.sync(b, json!({"request": "destroy", "room": 7, "secret": "s"}));
    assert_eq!(
        Value::Object(m),
        json!({"textroom": "destroyed", "room": 7, "permanent": false})
    );
    assert_eq!(
        t.got(c).last(),
        Some(&json!({"textroom": "destroyed", "room": 7}))
    );
    let r = t.request(
        c,
        json!({"textroom": "message", "transaction": "m6", "room": 7, "text": "x"}),
    );
    assert_eq!(r.get("error_code"), Some(&json!(417)));
}

#[test]
fn errors_over_the_data_channel() {
    let mut t = T::new(CFG, None);
    let (a, b) = (t.attach(), t.attach());
    t.request(
        a,
        json!({"textroom": "join", "transaction": "j", "room": 1234, "username": "alice"}),
    );
    let cases: Vec<(Value, u64, &str)> = vec![
        (
            json!({"textroom": "join"}),
            413,
            "Missing mandatory element (transaction)",
        ),
        (
            json!({"transaction": "t"}),
            413,
            "Missing mandatory element (textroom)",
        ),
        (
            json!({"textroom": 5, "transaction": "t"}),
            414,
            "Invalid element type (textroom should be a string)",
        ),
        (
            json!({"textroom": "nope", "transaction": "t"}),
            415,
            "Unsupported request nope",
        ),
        (
            json!({"textroom": "join", "transaction": "t", "room": 1234}),
            413,
            "Missing mandatory element (username)",
        ),
        (
            json!({"textroom": "join", "transaction": "t", "username": "x"}),
            413,
            "Missing mandatory element (room)",
        ),
        (
            json!({"textroom": "join", "transaction": "t", "room": "1234", "username": "x"}),
            414,
            "Invalid element type (room should be a positive integer)",
        ),
        (
            json!({"textroom": "join", "transaction": "t", "room": 99, "username": "x"}),
            417,
            "No such room (99)",
        ),
        (
            json!({"textroom": "join", "transaction": "t", "room": 1234, "username": "alice"}),
            420,
            "Username already taken",
        ),
        (
            json!({"textroom": "message", "transaction": "t", "room": 1234, "text": "x"}),
            422,
            "Not in room 1234",
        ),
        (
            json!({"textroom": "message", "transaction": "t", "room": 1234}),
            413,
            "Missing mandatory element (text)",
        ),
        (
            json!({"textroom": "leave", "transaction": "t", "room": 1234}),
            422,
            "Not in room 1234",
        ),
        (
            json!({"textroom": "create", "transaction": "t", "room": 1234}),
            418,
            "Room 1234 already exists",
        ),
        (
            json!({"textroom": "create", "transaction": "t", "history": -1}),
            414,
            "Invalid element type (history should be a positive integer)",
        ),
        (
            json!({"textroom": "create", "transaction": "t", "allowed": [1]}),
            414,
            "Invalid element in the allowed array (not a string)",
        ),
        (
            json!({"textroom": "create", "transaction": "t", "permanent": true}),
            499,
            "No configuration file, can't create permanent room",
        ),
        (
            json!({"textroom": "destroy", "transaction": "t", "room": 1234}),
            413,
            "Missing mandatory element (secret)",
        ),
        (
            json!({"textroom": "destroy", "transaction": "t", "room": 1234, "secret": "no"}),
            419,
            "Unauthorized (wrong secret)",
        ),
        (
            json!({"textroom": "kick", "transaction": "t", "room": 1234, "secret": "adminpwd", "username": "zed"}),
            423,
            "No such user zed in room 1234",
        ),
        (
            json!({"textroom": "allowed", "transaction": "t", "room": 1234, "action": "maybe"}),
            414,
            "Unsupported action 'maybe' (allowed)",
        ),
    ];
    for (req, code, text) in cases {
        let r = t.request(b, req.clone());
        assert_eq!(r.get("textroom"), Some(&json!("error")), "{req}");
        assert_eq!(r.get("error_code"), Some(&json!(code)), "{req}: {r}");
        assert_eq!(r.get("error"), Some(&json!(text)), "{req}");
    }
    // Already in the room; text that is not JSON is ignored.
    let r = t.request(
        a,
        json!({"textroom": "join", "transaction": "t", "room": 1234, "username": "other"}),
    );
    assert_eq!(r.get("error_code"), Some(&json!(421)));
    t.rec.clear();
    t.dc(a, "not json {");
    assert!(t.got(a).is_empty());
    // Tokens: only the allowed may join.
    let r = t.request(a, json!({"textroom": "allowed", "transaction": "t", "room": 1234, "secret": "adminpwd", "action": "add", "allowed": ["tok"]}));
    assert_eq!(r.get("allowed"), Some(&json!(["tok"])));
    t.request(a, json!({"textroom": "allowed", "transaction": "t", "room": 1234, "secret": "adminpwd", "action": "enable"}));
    let r = t.request(
        b,
        json!({"textroom": "join", "transaction": "t", "room": 1234, "username": "bob"}),
    );
    assert_eq!(
        r.get("error"),
        Some(&json!("Unauthorized (not in the allowed list)"))
    );
    let r = t.request(b, json!({"textroom": "join", "transaction": "t", "room": 1234, "username": "bob", "token": "tok"}));
    assert_eq!(r.get("textroom"), Some(&json!("success")));
}

#[test]
fn permanent_rooms_are_saved() {
    let dir = std::env::temp_dir().join(format!("jano-textroom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("janus.plugin.textroom.jcfg");
    std::fs::write(&file, CFG).unwrap();
    let mut t = T::new(CFG, Some(dir.clone()));
    let a = t.attach();
    let m = t.sync(a, json!({"request": "create", "room": 55, "description": "kept", "history": 3, "permanent": true}));
    assert_eq!(m.get("permanent"), Some(&json!(true)));
    let text = std::fs::read_to_string(&file).unwrap();
    let saved = Jcfg::parse(&text, "saved").unwrap();
    assert_eq!(
        saved.get_str("room-55", "description").as_deref(),
        Some("kept")
    );
    assert_eq!(saved.get_int("room-55", "history"), Some(3));
    assert_eq!(
        saved.get_str("room-1234", "secret").as_deref(),
        Some("adminpwd")
    );
    t.sync(
        a,
        json!({"request": "edit", "room": 55, "new_description": "renamed", "permanent": true}),
    );
    let saved = Jcfg::parse(&std::fs::read_to_string(&file).unwrap(), "saved").unwrap();
    assert_eq!(
        saved.get_str("room-55", "description").as_deref(),
        Some("renamed")
    );
    t.sync(
        a,
        json!({"request": "destroy", "room": 55, "permanent": true}),
    );
    let saved = Jcfg::parse(&std::fs::read_to_string(&file).unwrap(), "saved").unwrap();
    assert!(saved.category("room-55").is_none());
    // A restart reads it back (here: the file as it was after create).
    let t2 = T::new("room-55: { description = \"kept\" history = 3 }", None);
    let mut t2 = t2;
    let b = t2.attach();
    let m = t2.sync(b, json!({"request": "list"}));
    assert_eq!(
        m.get("list").and_then(Value::as_array).map(Vec::len),
        Some(1)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
