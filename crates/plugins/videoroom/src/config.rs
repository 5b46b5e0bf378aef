//! A room's settings: read from a `create` request or a `room-<id>` category of
//! `janus.plugin.videoroom.jcfg`, shown by `list`, changed by `edit`, and written back for
//! `permanent` rooms.

use crate::error::{VrError, VrResult};
use crate::json::{opt_array, opt_bool, opt_str, opt_u64, Body, Id};
use jano_config::{Group, Value as CfgValue};
use jano_plugin::{Map, Value};
use serde_json::json;
use std::collections::BTreeSet;

pub use jano_plugin::rtp::{AUDIO_CODECS, VIDEO_CODECS};

#[derive(Debug, Clone, PartialEq)]
pub struct RoomConfig {
    pub description: String,
    pub is_private: bool,
    pub secret: Option<String>,
    pub pin: Option<String>,
    pub require_pvtid: bool,
    pub signed_tokens: bool,
    pub publishers: u64,
    pub bitrate: u64,
    pub bitrate_cap: bool,
    pub fir_freq: u64,
    pub audiocodec: Vec<String>,
    pub videocodec: Vec<String>,
    pub vp9_profile: Option<String>,
    pub h264_profile: Option<String>,
    pub opus_fec: bool,
    pub opus_dtx: bool,
    pub audiolevel_ext: bool,
    pub audiolevel_event: bool,
    pub audio_active_packets: u64,
    pub audio_level_average: u64,
    pub videoorient_ext: bool,
    pub playoutdelay_ext: bool,
    pub transport_wide_cc_ext: bool,
    pub record: bool,
    pub rec_dir: Option<String>,
    pub lock_record: bool,
    pub notify_joining: bool,
    pub require_e2ee: bool,
    pub dummy_publisher: bool,
    /// The dummy publisher's codecs and their fmtp (`none` = no fmtp): `None` = every codec
    /// of the room. Like `dummy_e2ee`, only read at creation; never saved back.
    pub dummy_streams: Option<Vec<(String, String)>>,
    pub dummy_e2ee: bool,
    /// `None`: anyone may join; otherwise the tokens `join` must carry one of.
    pub allowed: Option<BTreeSet<String>>,
}

impl RoomConfig {
    pub fn new(id: &Id) -> RoomConfig {
        RoomConfig {
            description: format!("Room {id}"),
            is_private: false,
            secret: None,
            pin: None,
            require_pvtid: false,
            signed_tokens: false,
            publishers: 3,
            bitrate: 0,
            bitrate_cap: false,
            fir_freq: 0,
            audiocodec: vec!["opus".into()],
            videocodec: vec!["vp8".into()],
            vp9_profile: None,
            h264_profile: None,
            opus_fec: true,
            opus_dtx: false,
            audiolevel_ext: true,
            audiolevel_event: false,
            audio_active_packets: 100,
            audio_level_average: 25,
            videoorient_ext: true,
            playoutdelay_ext: true,
            transport_wide_cc_ext: true,
            record: false,
            rec_dir: None,
            lock_record: false,
            notify_joining: false,
            require_e2ee: false,
            dummy_publisher: false,
            dummy_streams: None,
            dummy_e2ee: false,
            allowed: None,
        }
    }

    /// The settings a `create` request gives (everything it does not name keeps its default).
    pub fn from_request(id: &Id, b: &Body) -> VrResult<RoomConfig> {
        let mut c = RoomConfig::new(id);
        if let Some(v) = opt_str(b, "description")? {
            if !v.is_empty() {
                c.description = v.to_owned();
            }
        }
        set_bool(&mut c.is_private, b, "is_private")?;
        c.secret = opt_str(b, "secret")?.map(str::to_owned);
        c.pin = opt_str(b, "pin")?.map(str::to_owned);
        set_bool(&mut c.require_pvtid, b, "require_pvtid")?;
        set_bool(&mut c.signed_tokens, b, "signed_tokens")?;
        set_u64(&mut c.publishers, b, "publishers")?;
        c.publishers = c.publishers.max(1);
        set_u64(&mut c.bitrate, b, "bitrate")?;
        if c.bitrate > 0 && c.bitrate < 64000 {
            c.bitrate = 64000;
        }
        set_bool(&mut c.bitrate_cap, b, "bitrate_cap")?;
        set_u64(&mut c.fir_freq, b, "fir_freq")?;
        if let Some(v) = opt_str(b, "audiocodec")? {
            c.audiocodec = codec_list(v, AUDIO_CODECS, "audiocodec")?;
        }
        if let Some(v) = opt_str(b, "videocodec")? {
            c.videocodec = codec_list(v, VIDEO_CODECS, "videocodec")?;
        }
        c.vp9_profile = opt_str(b, "vp9_profile")?.map(str::to_owned);
        c.h264_profile = opt_str(b, "h264_profile")?.map(str::to_owned);
        set_bool(&mut c.opus_fec, b, "opus_fec")?;
        set_bool(&mut c.opus_dtx, b, "opus_dtx")?;
        set_bool(&mut c.audiolevel_ext, b, "audiolevel_ext")?;
        set_bool(&mut c.audiolevel_event, b, "audiolevel_event")?;
        set_u64(&mut c.audio_active_packets, b, "audio_active_packets")?;
        set_u64(&mut c.audio_level_average, b, "audio_level_average")?;
        set_bool(&mut c.videoorient_ext, b, "videoorient_ext")?;
        set_bool(&mut c.playoutdelay_ext, b, "playoutdelay_ext")?;
        set_bool(&mut c.transport_wide_cc_ext, b, "transport_wide_cc_ext")?;
        set_bool(&mut c.record, b, "record")?;
        c.rec_dir = opt_str(b, "rec_dir")?.map(str::to_owned);
        set_bool(&mut c.lock_record, b, "lock_record")?;
        set_bool(&mut c.notify_joining, b, "notify_joining")?;
        set_bool(&mut c.require_e2ee, b, "require_e2ee")?;
        set_bool(&mut c.dummy_publisher, b, "dummy_publisher")?;
        c.dummy_streams = crate::dummy::streams_from_request(b)?;
        set_bool(&mut c.dummy_e2ee, b, "dummy_e2ee")?;
        if let Some(list) = opt_array(b, "allowed")? {
            c.allowed = Some(token_list(list)?);
        }
        Ok(c)
    }

    /// A `room-<id>` category of the configuration file (Janus reads it leniently: unknown
    /// keys and bad values are ignored).
    pub fn from_group(id: &Id, g: &Group) -> RoomConfig {
        let mut c = RoomConfig::new(id);
        let s = |k: &str| g.get_str(k).filter(|v| !v.is_empty());
        let bl = |k: &str, d: bool| g.get_bool(k).unwrap_or(d);
        let n = |k: &str, d: u64| {
            g.get_int(k)
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(d)
        };
        if let Some(v) = s("description") {
            c.description = v;
        }
        c.is_private = bl("is_private", false);
        c.secret = s("secret");
        c.pin = s("pin");
        c.require_pvtid = bl("require_pvtid", false);
        c.signed_tokens = bl("signed_tokens", false);
        c.publishers = n("publishers", 3).max(1);
        c.bitrate = n("bitrate", 0);
        if c.bitrate > 0 && c.bitrate < 64000 {
            c.bitrate = 64000;
        }
        c.bitrate_cap = bl("bitrate_cap", false);
        c.fir_freq = n("fir_freq", 0);
        if let Some(v) = s("audiocodec") {
            if let Ok(l) = codec_list(&v, AUDIO_CODECS, "audiocodec") {
                c.audiocodec = l;
            }
        }
        if let Some(v) = s("videocodec") {
            if let Ok(l) = codec_list(&v, VIDEO_CODECS, "videocodec") {
                c.videocodec = l;
            }
        }
        c.vp9_profile = s("vp9_profile");
        c.h264_profile = s("h264_profile");
        c.opus_fec = bl("opus_fec", true);
        c.opus_dtx = bl("opus_dtx", false);
        c.audiolevel_ext = bl("audiolevel_ext", true);
        c.audiolevel_event = bl("audiolevel_event", false);
        c.audio_active_packets = n("audio_active_packets", 100);
        c.audio_level_average = n("audio_level_average", 25);
        c.videoorient_ext = bl("videoorient_ext", true);
        c.playoutdelay_ext = bl("playoutdelay_ext", true);
        c.transport_wide_cc_ext = bl("transport_wide_cc_ext", true);
        c.record = bl("record", false);
        c.rec_dir = s("rec_dir");
        c.lock_record = bl("lock_record", false);
        c.notify_joining = bl("notify_joining", false);
        c.require_e2ee = bl("require_e2ee", false);
        c.dummy_publisher = bl("dummy_publisher", false);
        c.dummy_streams = crate::dummy::streams_from_group(g);
        c.dummy_e2ee = bl("dummy_e2ee", false);
        c
    }

    /// The category written back for a `permanent` room.
    /// The header extensions the room's `*_ext: false` settings leave out of its SDPs.
    pub fn without_extensions(&self) -> jano_plugin::Extensions {
        use jano_plugin::Extensions as E;
        E::default()
            .with(E::AUDIO_LEVEL, !self.audiolevel_ext)
            .with(E::VIDEO_ORIENTATION, !self.videoorient_ext)
            .with(E::PLAYOUT_DELAY, !self.playoutdelay_ext)
            .with(E::TRANSPORT_WIDE_CC, !self.transport_wide_cc_ext)
    }

    pub fn to_group(&self) -> Group {
        let mut g = Group::new();
        let s = |g: &mut Group, k: &str, v: &str| g.insert(k, CfgValue::Str(v.to_owned()));
        s(&mut g, "description", &self.description);
        if self.is_private {
            g.insert("is_private", CfgValue::Bool(true));
        }
        if let Some(v) = &self.secret {
            s(&mut g, "secret", v);
        }
        if let Some(v) = &self.pin {
            s(&mut g, "pin", v);
        }
        if self.require_pvtid {
            g.insert("require_pvtid", CfgValue::Bool(true));
        }
        if self.signed_tokens {
            g.insert("signed_tokens", CfgValue::Bool(true));
        }
        let int = |v: u64| CfgValue::Int(i64::try_from(v).unwrap_or(i64::MAX));
        g.insert("publishers", int(self.publishers));
        if self.bitrate > 0 {
            g.insert("bitrate", int(self.bitrate));
        }
        if self.bitrate_cap {
            g.insert("bitrate_cap", CfgValue::Bool(true));
        }
        if self.fir_freq > 0 {
            g.insert("fir_freq", int(self.fir_freq));
        }
        s(&mut g, "audiocodec", &self.audiocodec.join(","));
        s(&mut g, "videocodec", &self.videocodec.join(","));
        if let Some(v) = &self.vp9_profile {
            s(&mut g, "vp9_profile", v);
        }
        if let Some(v) = &self.h264_profile {
            s(&mut g, "h264_profile", v);
        }
        if !self.opus_fec {
            g.insert("opus_fec", CfgValue::Bool(false));
        }
        if self.opus_dtx {
            g.insert("opus_dtx", CfgValue::Bool(true));
        }
        if !self.audiolevel_ext {
            g.insert("audiolevel_ext", CfgValue::Bool(false));
        }
        if self.audiolevel_event {
            g.insert("audiolevel_event", CfgValue::Bool(true));
            g.insert("audio_active_packets", int(self.audio_active_packets));
            g.insert("audio_level_average", int(self.audio_level_average));
        }
        for (k, v) in [
            ("videoorient_ext", self.videoorient_ext),
            ("playoutdelay_ext", self.playoutdelay_ext),
            ("transport_wide_cc_ext", self.transport_wide_cc_ext),
        ] {
            if !v {
                g.insert(k, CfgValue::Bool(false));
            }
        }
        if self.record {
            g.insert("record", CfgValue::Bool(true));
        }
        if let Some(v) = &self.rec_dir {
            s(&mut g, "rec_dir", v);
        }
        if self.lock_record {
            g.insert("lock_record", CfgValue::Bool(true));
        }
        if self.notify_joining {
            g.insert("notify_joining", CfgValue::Bool(true));
        }
        if self.require_e2ee {
            g.insert("require_e2ee", CfgValue::Bool(true));
        }
        if self.dummy_publisher {
            g.insert("dummy_publisher", CfgValue::Bool(true));
        }
        g
    }

    /// One room as `list` shows it.
    pub fn to_list_entry(&self, id: &Id, participants: usize) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("room".into(), id.to_json());
        m.insert("description".into(), json!(self.description));
        m.insert("pin_required".into(), json!(self.pin.is_some()));
        m.insert("is_private".into(), json!(self.is_private));
        m.insert("max_publishers".into(), json!(self.publishers));
        m.insert("bitrate".into(), json!(self.bitrate));
        if self.bitrate_cap {
            m.insert("bitrate_cap".into(), json!(true));
        }
        m.insert("fir_freq".into(), json!(self.fir_freq));
        m.insert("require_pvtid".into(), json!(self.require_pvtid));
        m.insert("require_e2ee".into(), json!(self.require_e2ee));
        m.insert("dummy_publisher".into(), json!(self.dummy_publisher));
        m.insert("notify_joining".into(), json!(self.notify_joining));
        m.insert("audiocodec".into(), json!(self.audiocodec.join(",")));
        m.insert("videocodec".into(), json!(self.videocodec.join(",")));
        if self.audiocodec.iter().any(|c| c == "opus") {
            m.insert("opus_fec".into(), json!(self.opus_fec));
        }
        if self.opus_dtx {
            m.insert("opus_dtx".into(), json!(true));
        }
        m.insert("record".into(), json!(self.record));
        if let Some(d) = &self.rec_dir {
            m.insert("rec_dir".into(), json!(d));
        }
        m.insert("lock_record".into(), json!(self.lock_record));
        m.insert("num_participants".into(), json!(participants));
        m.insert("audiolevel_ext".into(), json!(self.audiolevel_ext));
        m.insert("audiolevel_event".into(), json!(self.audiolevel_event));
        if self.audiolevel_event {
            m.insert(
                "audio_active_packets".into(),
                json!(self.audio_active_packets),
            );
            m.insert(
                "audio_level_average".into(),
                json!(self.audio_level_average),
            );
        }
        m.insert("videoorient_ext".into(), json!(self.videoorient_ext));
        m.insert("playoutdelay_ext".into(), json!(self.playoutdelay_ext));
        m.insert(
            "transport_wide_cc_ext".into(),
            json!(self.transport_wide_cc_ext),
        );
        m
    }

    /// Applies an `edit` request's `new_*` fields.
    pub fn edit(&mut self, b: &Body) -> VrResult<()> {
        // Validate everything before changing anything.
        let desc = opt_str(b, "new_description")?;
        let private = opt_bool(b, "new_is_private")?;
        let secret = opt_str(b, "new_secret")?;
        let pin = opt_str(b, "new_pin")?;
        let pvtid = opt_bool(b, "new_require_pvtid")?;
        let bitrate = opt_u64(b, "new_bitrate")?;
        let fir = opt_u64(b, "new_fir_freq")?;
        let publishers = opt_u64(b, "new_publishers")?;
        let lock_record = opt_bool(b, "new_lock_record")?;
        let rec_dir = opt_str(b, "new_rec_dir")?;
        if let Some(v) = desc.filter(|v| !v.is_empty()) {
            self.description = v.to_owned();
        }
        if let Some(v) = private {
            self.is_private = v;
        }
        if let Some(v) = secret {
            self.secret = Some(v.to_owned());
        }
        if let Some(v) = pin {
            self.pin = (!v.is_empty()).then(|| v.to_owned());
        }
        if let Some(v) = pvtid {
            self.require_pvtid = v;
        }
        if let Some(v) = bitrate {
            self.bitrate = if v > 0 && v < 64000 { 64000 } else { v };
        }
        if let Some(v) = fir {
            self.fir_freq = v;
        }
        if let Some(v) = publishers {
            self.publishers = v.max(1);
        }
        if let Some(v) = lock_record {
            self.lock_record = v;
        }
        if let Some(v) = rec_dir {
            self.rec_dir = Some(v.to_owned());
        }
        Ok(())
    }
}

fn set_bool(slot: &mut bool, b: &Body, name: &'static str) -> VrResult<()> {
    if let Some(v) = opt_bool(b, name)? {
        *slot = v;
    }
    Ok(())
}

fn set_u64(slot: &mut u64, b: &Body, name: &'static str) -> VrResult<()> {
    if let Some(v) = opt_u64(b, name)? {
        *slot = v;
    }
    Ok(())
}

/// A comma-separated codec list, each one known (at most 5, as Janus keeps).
pub fn codec_list(text: &str, known: &[&str], name: &str) -> VrResult<Vec<String>> {
    // The names Janus lists in its error (not every codec it accepts).
    let listed = if name == "videocodec" {
        "vp8, vp9, av1, h264 or h265"
    } else {
        "opus, isac32, isac16, pcmu, pcma or g722"
    };
    let mut out = Vec::new();
    for c in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let c = c.to_ascii_lowercase();
        if !known.contains(&c.as_str()) {
            return Err(VrError::Invalid(format!(
                "Invalid element ({name} can only be or contain {listed})"
            )));
        }
        if !out.contains(&c) && out.len() < 5 {
            out.push(c);
        }
    }
    if out.is_empty() {
        return Err(VrError::Invalid(format!("Invalid element ({name})")));
    }
    Ok(out)
}

pub fn token_list(items: &[Value]) -> VrResult<BTreeSet<String>> {
    items
        .iter()
        .map(|v| {
            v.as_str().map(str::to_owned).ok_or_else(|| {
                VrError::Invalid("Invalid element in the allowed array (not a string)".into())
            })
        })
        .collect()
}
