//! A media peer's Janus signalling on its own WebSocket: the session and handle, the plugin
//! conversation of each role (EchoTest offer; fan-out `publish` / `subscribe`; VideoRoom
//! `create` + `joinandconfigure` for a publisher, `join` → the server's offer → `start` for a
//! subscriber) and the teardown (the room it created, then the session). Kept apart from the
//! str0m/UDP side in `peer`, which only sees the SDP that comes out of it.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaKind, Mid};
use str0m::Rtc;

use crate::janus;
use crate::peer::{PeerCfg, PeerResult, Role};
use crate::stats::{Failure, Kind};
use crate::ws::WsConn;

/// AudioBridge peers negotiate in `join_mixer`: never in the shared offer path.
fn unreachable_mixer() -> Result<Value, Failure> {
    Err(Failure::new(
        Kind::Message,
        "internal",
        "mixer in the echo path",
    ))
}

/// A tokio deadline `d` from now (the WebSocket calls take tokio instants).
pub fn tdeadline(d: Duration) -> tokio::time::Instant {
    tokio::time::Instant::now() + d
}

/// What a negotiation agreed on, for the peer's media side.
pub struct Negotiated {
    pub audio_mid: Mid,
    pub video_mid: Mid,
    /// When the offer went out (our offer, or the subscriber's `join` asking for the server's):
    /// `webrtcup` and the connect timeout count from here.
    pub offer_sent: Instant,
    /// Fan-out: the handle id; VideoRoom publisher: its participant id.
    pub feed_id: u64,
}

/// One peer's Janus session: its WebSocket, session and handle ids, and the VideoRoom room it
/// created (destroyed at hang-up).
pub struct Signal {
    ws: Option<WsConn>,
    session: Option<u64>,
    handle: Option<u64>,
    /// The VideoRoom or AudioBridge room this peer created (destroyed when it hangs up).
    created_room: Option<u64>,
    /// The plugin (package, data key) of that room.
    room_plugin: (&'static str, &'static str),
    tx: janus::Tx,
    /// Per request/answer.
    timeout: Duration,
}

impl Signal {
    pub fn new(timeout: Duration) -> Self {
        Signal {
            ws: None,
            session: None,
            handle: None,
            created_room: None,
            room_plugin: (janus::VIDEOROOM, "videoroom"),
            tx: janus::Tx::new(),
            timeout,
        }
    }

    /// The WebSocket, for the peer's own loops (events, `webrtcup`, keepalives).
    pub fn conn(&mut self) -> Option<&mut WsConn> {
        self.ws.as_mut()
    }

    pub fn session(&self) -> Option<u64> {
        self.session
    }

    fn ws(&mut self) -> Result<&mut WsConn, Failure> {
        self.ws
            .as_mut()
            .ok_or_else(|| Failure::new(Kind::Connect, "no WebSocket", "not connected"))
    }

    /// Sends a request and waits for the message answering its transaction.
    async fn call(&mut self, kind: Kind, body: Value) -> Result<(Value, String), Failure> {
        let tx = self.tx.next();
        let mut body = body;
        if let Some(o) = body.as_object_mut() {
            o.insert("transaction".into(), json!(tx));
        }
        let deadline = tdeadline(self.timeout);
        let ws = self.ws()?;
        ws.send(kind, body.to_string(), deadline).await?;
        let v = ws.recv_tx(kind, &tx, deadline).await?;
        Ok((v, tx))
    }

    /// Sends a plugin message (with an optional JSEP) and returns the plugin's `event` answering
    /// it (after Janus's `ack`, if any) and the transaction.
    async fn message(
        &mut self,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<(Value, String), Failure> {
        let (sid, hid) = (self.session.unwrap_or(0), self.handle.unwrap_or(0));
        let tx = self.tx.next();
        let mut req = json!({
            "janus": "message", "session_id": sid, "handle_id": hid, "transaction": tx,
            "body": body,
        });
        if let Some(j) = jsep {
            req["jsep"] = j;
        }
        let deadline = tdeadline(self.timeout);
        let ws = self.ws()?;
        ws.send(Kind::Message, req.to_string(), deadline).await?;
        let ack = ws.recv_tx(Kind::Message, &tx, deadline).await?;
        // Janus answers an async plugin message with `ack`, then the `event`; accept the event
        // directly too (nothing requires the ack to come first).
        let ev = if janus::janus_kind(&ack) == "ack" {
            ws.recv_tx(Kind::Event, &tx, deadline).await?
        } else {
            ack
        };
        Ok((ev, tx))
    }

    /// Connects, creates the session and attaches the role's plugin (EchoTest; fan-out, or
    /// VideoRoom when the peer has a room).
    pub async fn attach(&mut self, cfg: &PeerCfg) -> Result<(), Failure> {
        let ws = WsConn::connect(&cfg.url, tdeadline(self.timeout)).await?;
        self.ws = Some(ws);
        let (v, tx) = self.call(Kind::Create, json!({"janus": "create"})).await?;
        let sid = janus::check_create(&v, &tx)?;
        self.session = Some(sid);
        let plugin = match (&cfg.role, cfg.room) {
            (Role::Echo, _) => janus::ECHOTEST,
            (Role::Mixer, _) => janus::AUDIOBRIDGE,
            (_, None) => janus::FANOUT,
            (_, Some(_)) => janus::VIDEOROOM,
        };
        let (v, tx) = self
            .call(
                Kind::Attach,
                json!({"janus": "attach", "plugin": plugin, "session_id": sid}),
            )
            .await?;
        let hid = janus::check_attach(&v, &tx, sid)?;
        self.handle = Some(hid);
        Ok(())
    }

    /// VideoRoom publisher: creates the group's room (an existing one, e.g. a given `--room`
    /// id, is used as it is).
    async fn create_room(&mut self, room: u64) -> Result<(), Failure> {
        let (sid, hid) = (self.session.unwrap_or(0), self.handle.unwrap_or(0));
        let (v, tx) = self
            .call(
                Kind::Message,
                json!({
                    "janus": "message", "session_id": sid, "handle_id": hid,
                    "body": {
                        "request": "create", "room": room, "publishers": 1, "bitrate": 0,
                        "description": "jano-load",
                    },
                }),
            )
            .await?;
        let data = janus::check_videoroom(Kind::Message, &v, &tx, sid, hid, None)?;
        if data["videoroom"] == "created" {
            self.created_room = Some(room);
            return Ok(());
        }
        if data["error_code"].as_u64() == Some(427) {
            // The room exists already.
            return Ok(());
        }
        Err(Failure::new(
            Kind::Message,
            "videoroom create failed",
            janus::short(&v),
        ))
    }

    /// AudioBridge participant: creates the group's room if nobody did yet (Janus's default
    /// sampling rate, 16 kHz).
    async fn create_audio_room(&mut self, room: u64) -> Result<(), Failure> {
        let (sid, hid) = (self.session.unwrap_or(0), self.handle.unwrap_or(0));
        let (v, tx) = self
            .call(
                Kind::Message,
                json!({
                    "janus": "message", "session_id": sid, "handle_id": hid,
                    "body": {"request": "create", "room": room, "description": "jano-load"},
                }),
            )
            .await?;
        let data = janus::check_room_plugin(
            Kind::Message,
            &v,
            &tx,
            sid,
            hid,
            janus::AUDIOBRIDGE,
            "audiobridge",
            None,
        )?;
        if data["audiobridge"] == "created" {
            self.created_room = Some(room);
            self.room_plugin = (janus::AUDIOBRIDGE, "audiobridge");
            return Ok(());
        }
        if data["error_code"].as_u64() == Some(486) {
            // Another peer of the group made it first.
            return Ok(());
        }
        Err(Failure::new(
            Kind::Message,
            "audiobridge create failed",
            janus::short(&v),
        ))
    }

    /// AudioBridge participant: an audio-only offer with `join`, the answer in `joined`.
    async fn join_mixer(&mut self, cfg: &PeerCfg, rtc: &mut Rtc) -> Result<Negotiated, Failure> {
        let (sid, hid) = (self.session.unwrap_or(0), self.handle.unwrap_or(0));
        let room = cfg.room.unwrap_or(0);
        let mut api = rtc.sdp_api();
        let audio_mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| Failure::new(Kind::Message, "no offer", "str0m made no offer"))?;
        self.create_audio_room(room).await?;
        let offer_sent = Instant::now();
        let (ev, tx) = self
            .message(
                json!({"request": "join", "room": room, "display": format!("p{}", cfg.index)}),
                Some(json!({"type": "offer", "sdp": offer.to_sdp_string(), "trickle": false})),
            )
            .await?;
        let data = janus::check_room_plugin(
            Kind::Event,
            &ev,
            &tx,
            sid,
            hid,
            janus::AUDIOBRIDGE,
            "audiobridge",
            Some("joined"),
        )?;
        let feed_id = data["id"].as_u64().unwrap_or(0);
        let sdp = jsep_sdp(&ev, "answer")?;
        let sdp = keep_candidates_on(sdp, cfg.bind_ip);
        let answer = SdpAnswer::from_sdp_string(&sdp)
            .map_err(|e| Failure::new(Kind::Event, "bad SDP answer", e.to_string()))?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| Failure::new(Kind::Event, "answer rejected", e.to_string()))?;
        // No video: the second track is a placeholder that never sends.
        Ok(Negotiated {
            audio_mid,
            video_mid: audio_mid,
            offer_sent,
            feed_id,
        })
    }

    /// offer → answer on the attached handle (a VideoRoom subscriber: join → the server's offer
    /// → our answer with `start`), applied to `rtc`. `feed_of` is the publisher's feed a
    /// subscriber joins. A `webrtcup` that came while waiting for a subscriber's `started` is
    /// recorded in `res`.
    pub async fn negotiate(
        &mut self,
        cfg: &PeerCfg,
        rtc: &mut Rtc,
        feed_of: Option<u64>,
        res: &mut PeerResult,
    ) -> Result<Negotiated, Failure> {
        if matches!(cfg.role, Role::Mixer) {
            return self.join_mixer(cfg, rtc).await;
        }
        let (sid, hid) = (self.session.unwrap_or(0), self.handle.unwrap_or(0));
        let room = cfg.room;
        let subscriber = matches!(cfg.role, Role::Subscriber { .. });
        let offer_sent;
        let mut feed_id = hid;
        let (audio_mid, video_mid) = if let (true, Some(room)) = (subscriber, room) {
            // VideoRoom subscriber: the server offers, we answer.
            let id = feed_of.unwrap_or(0);
            offer_sent = Instant::now();
            let (ev, tx) = self
                .message(
                    json!({"request": "join", "ptype": "subscriber", "room": room,
                        "streams": [{"feed": id}]}),
                    None,
                )
                .await?;
            janus::check_videoroom(Kind::Event, &ev, &tx, sid, hid, Some("attached"))?;
            let sdp = jsep_sdp(&ev, "offer")?;
            let sdp = keep_candidates_on(sdp, cfg.bind_ip);
            let mids = mids_of(&sdp)?;
            let offer = SdpOffer::from_sdp_string(&sdp)
                .map_err(|e| Failure::new(Kind::Event, "bad SDP offer", e.to_string()))?;
            let answer = rtc
                .sdp_api()
                .accept_offer(offer)
                .map_err(|e| Failure::new(Kind::Event, "offer rejected", e.to_string()))?;
            let ups = self.ws()?.unsolicited.count("webrtcup");
            let (ev, tx) = self
                .message(
                    json!({"request": "start", "room": room}),
                    Some(json!({"type": "answer", "sdp": answer.to_sdp_string(),
                        "trickle": false})),
                )
                .await?;
            let data = janus::check_videoroom(Kind::Event, &ev, &tx, sid, hid, Some("event"))?;
            if data["started"] != "ok" {
                return Err(Failure::new(
                    Kind::Event,
                    "start: no started ok",
                    janus::short(&ev),
                ));
            }
            if self.ws()?.unsolicited.count("webrtcup") > ups {
                // Came while we waited for the `started` event.
                let us = offer_sent.elapsed().as_micros().min(u32::MAX as u128);
                res.webrtcup_us = Some(us as u32);
            }
            mids
        } else {
            let mut api = rtc.sdp_api();
            let audio_mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
            let video_mid = api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
            let (offer, pending) = api
                .apply()
                .ok_or_else(|| Failure::new(Kind::Message, "no offer", "str0m made no offer"))?;
            let request = match (&cfg.role, room) {
                (Role::Echo, _) => json!({"audio": true, "video": true}),
                (Role::Publisher(_), None) => json!({"request": "publish"}),
                (Role::Publisher(_), Some(room)) => {
                    self.create_room(room).await?;
                    json!({"request": "joinandconfigure", "ptype": "publisher", "room": room,
                        "display": format!("pub{}", cfg.index)})
                }
                (Role::Subscriber { .. }, _) => {
                    json!({"request": "subscribe", "feed": feed_of.unwrap_or(0)})
                }
                (Role::Mixer, _) => unreachable_mixer()?,
            };
            offer_sent = Instant::now();
            let (ev, tx) = self
                .message(
                    request,
                    Some(json!({"type": "offer", "sdp": offer.to_sdp_string(),
                        "trickle": false})),
                )
                .await?;
            match (&cfg.role, room) {
                (Role::Echo, _) => janus::check_event(&ev, &tx, sid, hid)?,
                (Role::Mixer, _) => {}
                (_, None) => {
                    janus::check_plugin_event(&ev, &tx, sid, hid, janus::FANOUT, "fanout")?
                }
                (_, Some(_)) => {
                    let data =
                        janus::check_videoroom(Kind::Event, &ev, &tx, sid, hid, Some("joined"))?;
                    feed_id = data["id"].as_u64().ok_or_else(|| {
                        Failure::new(Kind::Event, "joined without an id", janus::short(&ev))
                    })?;
                }
            }
            let sdp = jsep_sdp(&ev, "answer")?;
            let sdp = keep_candidates_on(sdp, cfg.bind_ip);
            let answer = SdpAnswer::from_sdp_string(&sdp)
                .map_err(|e| Failure::new(Kind::Event, "bad SDP answer", e.to_string()))?;
            rtc.sdp_api()
                .accept_answer(pending, answer)
                .map_err(|e| Failure::new(Kind::Event, "answer rejected", e.to_string()))?;
            (audio_mid, video_mid)
        };
        Ok(Negotiated {
            audio_mid,
            video_mid,
            offer_sent,
            feed_id,
        })
    }

    /// Destroys the VideoRoom room it created and the session (bounded), closes the socket.
    /// Problems are soft failures.
    pub async fn hangup(&mut self, soft_failures: &mut Vec<Failure>) {
        let (plugin, key) = self.room_plugin;
        if let (Some(room), Some(sid), Some(hid)) =
            (self.created_room.take(), self.session, self.handle)
        {
            let r = self
                .call(
                    Kind::Destroy,
                    json!({"janus": "message", "session_id": sid, "handle_id": hid,
                        "body": {"request": "destroy", "room": room}}),
                )
                .await
                .and_then(|(v, tx)| {
                    let d = janus::check_room_plugin(
                        Kind::Destroy,
                        &v,
                        &tx,
                        sid,
                        hid,
                        plugin,
                        key,
                        None,
                    )?;
                    if d[key] == "destroyed" {
                        Ok(())
                    } else {
                        Err(Failure::new(
                            Kind::Destroy,
                            format!("{key} destroy failed"),
                            janus::short(&v),
                        ))
                    }
                });
            if let Err(f) = r {
                soft_failures.push(f);
            }
        }
        let Some(sid) = self.session.take() else {
            if let Some(ws) = self.ws.take() {
                ws.close(tdeadline(Duration::from_secs(1))).await;
            }
            return;
        };
        let r = self
            .call(
                Kind::Destroy,
                json!({"janus": "destroy", "session_id": sid}),
            )
            .await
            .and_then(|(v, tx)| janus::check_success(Kind::Destroy, &v, &tx, sid));
        if let Err(f) = r {
            soft_failures.push(f);
        }
        if let Some(ws) = self.ws.take() {
            ws.close(tdeadline(Duration::from_secs(1))).await;
        }
    }
}

/// Keeps only the answer's UDP host candidates on `ip`: media stays on this machine's address
/// (e.g. the namespace's), and no checks go to interfaces that cannot be reached.
fn keep_candidates_on(sdp: &str, ip: IpAddr) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let l = line.trim_end();
        if let Some(c) = l.strip_prefix("a=candidate:") {
            // foundation component transport priority address port typ ...
            let f: Vec<&str> = c.split_whitespace().collect();
            let udp = f.get(2).is_some_and(|t| t.eq_ignore_ascii_case("udp"));
            let here = f
                .get(4)
                .and_then(|a| a.parse::<IpAddr>().ok())
                .is_some_and(|a| a == ip);
            if !(udp && here) {
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

/// The `a=mid` of the first audio and of the first video m-line of an offer.
fn mids_of(sdp: &str) -> Result<(Mid, Mid), Failure> {
    let (mut audio, mut video) = (None, None);
    let mut kind = "";
    for l in sdp.lines() {
        let l = l.trim_end();
        if let Some(m) = l.strip_prefix("m=") {
            kind = m.split(' ').next().unwrap_or("");
        } else if let Some(mid) = l.strip_prefix("a=mid:") {
            let slot = match kind {
                "audio" => &mut audio,
                "video" => &mut video,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(Mid::from(mid.trim()));
            }
        }
    }
    match (audio, video) {
        (Some(a), Some(v)) => Ok((a, v)),
        _ => Err(Failure::new(
            Kind::Event,
            "offer without audio and video",
            "an audio and a video m-line with a=mid expected",
        )),
    }
}

/// The SDP of an event's JSEP of type `want` (`offer` / `answer`).
fn jsep_sdp<'v>(ev: &'v Value, want: &str) -> Result<&'v str, Failure> {
    if ev.pointer("/jsep/type").and_then(Value::as_str) != Some(want) {
        return Err(Failure::new(
            Kind::Event,
            format!("no jsep {want}"),
            janus::short(ev),
        ));
    }
    ev.pointer("/jsep/sdp")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::new(Kind::Event, format!("no jsep {want} sdp"), janus::short(ev)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_filtered_to_bind_ip() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            a=candidate:1 1 udp 2015363327 10.9.9.1 4000 typ host\r\n\
            a=candidate:2 1 udp 2015363327 172.17.0.2 4001 typ host\r\n\
            a=candidate:3 1 tcp 1015363327 10.9.9.1 9 typ host tcptype active\r\n\
            a=end-of-candidates\r\n";
        let out = keep_candidates_on(sdp, "10.9.9.1".parse().unwrap());
        assert!(out.contains("10.9.9.1 4000"));
        assert!(!out.contains("172.17.0.2"));
        assert!(!out.contains("tcptype"));
        assert!(out.contains("a=end-of-candidates\r\n"));
    }

    #[test]
    fn mids_of_an_offer() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v1\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:a0\r\nm=application 9 x\r\na=mid:d\r\n";
        let (a, v) = mids_of(sdp).unwrap();
        assert_eq!((a.to_string(), v.to_string()), ("a0".into(), "v1".into()));
        assert!(mids_of("v=0\r\nm=audio 9 x 111\r\na=mid:0\r\n").is_err());
    }
}
