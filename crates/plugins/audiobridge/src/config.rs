//! A room's settings: from a `create` request or a `room-<id>` category of
//! `janus.plugin.audiobridge.jcfg`, shown by `list`, changed by `edit`, written back for
//! `permanent` rooms.

use crate::error::{AbError, AbResult};
use jano_config::{Group, Value as CfgValue};
use jano_plugin::fields::{opt_array, opt_bool, opt_str, Body};
use jano_plugin::ids::Id;
use jano_plugin::{Map, Value};
use serde_json::json;
use std::collections::BTreeSet;

/// Packets queued before a participant's audio is mixed, unless the room or the participant
/// says otherwise; and the most either may ask for.
pub const DEFAULT_PREBUFFERING: u64 = 6;
pub const MAX_PREBUFFERING: u64 = 50;
/// The most groups a room can have.
pub const MAX_GROUPS: usize = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct RoomConfig {
    pub description: String,
    pub is_private: bool,
    pub secret: Option<String>,
    pub pin: Option<String>,
    pub signed_tokens: bool,
    pub sampling_rate: u32,
    pub spatial_audio: bool,
    pub audiolevel_ext: bool,
    pub audiolevel_event: bool,
    pub audio_active_packets: u64,
    pub audio_level_average: u64,
    pub default_prebuffering: u64,
    pub default_expectedloss: u64,
    pub default_bitrate: u64,
    pub denoise: bool,
    pub record: bool,
    pub record_file: Option<String>,
    pub record_dir: Option<String>,
    pub mjrs: bool,
    pub mjrs_dir: Option<String>,
    pub allow_rtp_participants: bool,
    pub groups: Vec<String>,
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
            signed_tokens: false,
            sampling_rate: 16000,
            spatial_audio: false,
            audiolevel_ext: true,
            audiolevel_event: false,
            audio_active_packets: 100,
            audio_level_average: 25,
            default_prebuffering: DEFAULT_PREBUFFERING,
            default_expectedloss: 0,
            default_bitrate: 0,
            denoise: false,
            record: false,
            record_file: None,
            record_dir: None,
            mjrs: false,
            mjrs_dir: None,
            allow_rtp_participants: false,
            groups: Vec::new(),
            allowed: None,
        }
    }

    /// Values outside what Janus accepts fall back to the defaults, as Janus does (with a
    /// warning there, silently here), except the sampling rate, which is refused.
    fn normalise(&mut self) -> AbResult<()> {
        if !matches!(self.sampling_rate, 8000 | 12000 | 16000 | 24000 | 48000) {
            // 499 in Janus, not 484.
            return Err(AbError::Unknown(format!(
                "Unsupported sampling rate {}",
                self.sampling_rate
            )));
        }
        if self.audio_active_packets == 0 {
            self.audio_active_packets = 100;
        }
        if self.audio_level_average == 0 {
            self.audio_level_average = 25;
        }
        if self.default_prebuffering > MAX_PREBUFFERING {
            self.default_prebuffering = DEFAULT_PREBUFFERING;
        }
        if self.default_expectedloss > 20 {
            self.default_expectedloss = 0;
        }
        if self.default_bitrate != 0 && !(500..=512_000).contains(&self.default_bitrate) {
            self.default_bitrate = 0;
        }
        Ok(())
    }

    /// The settings a `create` request gives (everything it does not name keeps its default).
    pub fn from_request(id: &Id, b: &Body) -> AbResult<RoomConfig> {
        let mut c = RoomConfig::new(id);
        if let Some(v) = opt_str(b, "description")? {
            if !v.is_empty() {
                c.description = v.to_owned();
            }
        }
        set_bool(&mut c.is_private, b, "is_private")?;
        c.secret = opt_str(b, "secret")?.map(str::to_owned);
        c.pin = opt_str(b, "pin")?.map(str::to_owned);
        // `sampling` is the older name Janus still reads.
        let rate = match opt_int(b, "sampling_rate")? {
            Some(r) => Some(r),
            None => opt_int(b, "sampling")?,
        };
        if let Some(r) = rate {
            c.sampling_rate = u32::try_from(r).unwrap_or(0);
        }
        set_bool(&mut c.spatial_audio, b, "spatial_audio")?;
        set_bool(&mut c.audiolevel_ext, b, "audiolevel_ext")?;
        set_bool(&mut c.audiolevel_event, b, "audiolevel_event")?;
        set_u64(&mut c.audio_active_packets, b, "audio_active_packets")?;
        set_u64(&mut c.audio_level_average, b, "audio_level_average")?;
        set_u64(&mut c.default_prebuffering, b, "default_prebuffering")?;
        set_u64(&mut c.default_expectedloss, b, "default_expectedloss")?;
        set_u64(&mut c.default_bitrate, b, "default_bitrate")?;
        set_bool(&mut c.denoise, b, "denoise")?;
        set_bool(&mut c.record, b, "record")?;
        c.record_file = opt_str(b, "record_file")?.map(str::to_owned);
        c.record_dir = opt_str(b, "record_dir")?.map(str::to_owned);
        set_bool(&mut c.mjrs, b, "mjrs")?;
        c.mjrs_dir = opt_str(b, "mjrs_dir")?.map(str::to_owned);
        set_bool(&mut c.allow_rtp_participants, b, "allow_rtp_participants")?;
        if let Some(list) = opt_array(b, "allowed")? {
            c.allowed = Some(string_list(list, "allowed")?);
        }
        if let Some(list) = opt_array(b, "groups")? {
            if list.len() > MAX_GROUPS {
                return Err(AbError::Invalid(format!(
                    "Too many groups specified (max {MAX_GROUPS} allowed)"
                )));
            }
            for g in string_list(list, "groups")? {
                if !c.groups.contains(&g) {
                    c.groups.push(g);
                }
            }
        }
        c.normalise()?;
        Ok(c)
    }

    pub fn from_group(id: &Id, g: &Group) -> AbResult<RoomConfig> {
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
        c.signed_tokens = bl("signed_tokens", false);
        let rate = g.get_int("sampling_rate").or_else(|| g.get_int("sampling"));
        if let Some(r) = rate {
            c.sampling_rate = u32::try_from(r).unwrap_or(0);
        }
        c.spatial_audio = bl("spatial_audio", false);
        c.audiolevel_ext = bl("audiolevel_ext", true);
        c.audiolevel_event = bl("audiolevel_event", false);
        c.audio_active_packets = n("audio_active_packets", 100);
        c.audio_level_average = n("audio_level_average", 25);
        c.default_prebuffering = n("default_prebuffering", DEFAULT_PREBUFFERING);
        c.default_expectedloss = n("default_expectedloss", 0);
        c.default_bitrate = n("default_bitrate", 0);
        c.denoise = bl("denoise", false);
        c.record = bl("record", false);
        c.record_file = s("record_file");
        c.record_dir = s("record_dir");
        c.mjrs = bl("mjrs", false);
        c.mjrs_dir = s("mjrs_dir");
        c.allow_rtp_participants = bl("allow_rtp_participants", false);
        if let Some(CfgValue::Array(list) | CfgValue::List(list)) = g.get("groups") {
            for v in list.iter().filter_map(CfgValue::as_string).take(MAX_GROUPS) {
                if !c.groups.contains(&v) {
                    c.groups.push(v);
                }
            }
        }
        c.normalise()?;
        Ok(c)
    }

    pub fn to_group(&self) -> Group {
        let mut g = Group::new();
        let s = |g: &mut Group, k: &str, v: &str| g.insert(k, CfgValue::Str(v.to_owned()));
        let int = |v: u64| CfgValue::Int(i64::try_from(v).unwrap_or(i64::MAX));
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
        if self.signed_tokens {
            g.insert("signed_tokens", CfgValue::Bool(true));
        }
        g.insert("sampling_rate", int(u64::from(self.sampling_rate)));
        if self.spatial_audio {
            g.insert("spatial_audio", CfgValue::Bool(true));
        }
        if !self.audiolevel_ext {
            g.insert("audiolevel_ext", CfgValue::Bool(false));
        }
        if self.audiolevel_event {
            g.insert("audiolevel_event", CfgValue::Bool(true));
            g.insert("audio_active_packets", int(self.audio_active_packets));
            g.insert("audio_level_average", int(self.audio_level_average));
        }
        if self.default_prebuffering != DEFAULT_PREBUFFERING {
            g.insert("default_prebuffering", int(self.default_prebuffering));
        }
        if self.default_expectedloss > 0 {
            g.insert("default_expectedloss", int(self.default_expectedloss));
        }
        if self.default_bitrate > 0 {
            g.insert("default_bitrate", int(self.default_bitrate));
        }
        if self.denoise {
            g.insert("denoise", CfgValue::Bool(true));
        }
        if self.record {
            g.insert("record", CfgValue::Bool(true));
        }
        if let Some(v) = &self.record_file {
            s(&mut g, "record_file", v);
        }
        if let Some(v) = &self.record_dir {
            s(&mut g, "record_dir", v);
        }
        if self.mjrs {
            g.insert("mjrs", CfgValue::Bool(true));
        }
        if let Some(v) = &self.mjrs_dir {
            s(&mut g, "mjrs_dir", v);
        }
        if self.allow_rtp_participants {
            g.insert("allow_rtp_participants", CfgValue::Bool(true));
        }
        if !self.groups.is_empty() {
            g.insert(
                "groups",
                CfgValue::Array(
                    self.groups
                        .iter()
                        .map(|x| CfgValue::Str(x.clone()))
                        .collect(),
                ),
            );
        }
        g
    }

    /// One entry of `list`.
    pub fn to_list_entry(&self, id: &Id, participants: usize, muted: bool) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("room".into(), id.to_json());
        m.insert("description".into(), json!(self.description));
        m.insert("pin_required".into(), json!(self.pin.is_some()));
        m.insert("sampling_rate".into(), json!(self.sampling_rate));
        m.insert("spatial_audio".into(), json!(self.spatial_audio));
        m.insert("record".into(), json!(self.record));
        m.insert("muted".into(), json!(muted));
        m.insert("num_participants".into(), json!(participants));
        m
    }

    /// `edit`: the `new_*` fields.
    pub fn edit(&mut self, b: &Body) -> AbResult<()> {
        let desc = opt_str(b, "new_description")?;
        let private = opt_bool(b, "new_is_private")?;
        let secret = opt_str(b, "new_secret")?;
        let pin = opt_str(b, "new_pin")?;
        let record_dir = opt_str(b, "new_record_dir")?;
        let mjrs_dir = opt_str(b, "new_mjrs_dir")?;
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
        if let Some(v) = record_dir {
            self.record_dir = Some(v.to_owned());
        }
        if let Some(v) = mjrs_dir {
            self.mjrs_dir = Some(v.to_owned());
        }
        Ok(())
    }
}

fn set_bool(field: &mut bool, b: &Body, name: &'static str) -> AbResult<()> {
    if let Some(v) = opt_bool(b, name)? {
        *field = v;
    }
    Ok(())
}

/// A non-negative integer field ("a positive integer" in Janus's words).
fn set_u64(field: &mut u64, b: &Body, name: &'static str) -> AbResult<()> {
    if let Some(v) = jano_plugin::fields::opt_u64(b, name)? {
        *field = v;
    }
    Ok(())
}

fn opt_int(b: &Body, name: &'static str) -> AbResult<Option<u64>> {
    Ok(jano_plugin::fields::opt_u64(b, name)?)
}

fn string_list(list: &[Value], name: &str) -> AbResult<BTreeSet<String>> {
    list.iter()
        .map(|v| {
            v.as_str().map(str::to_owned).ok_or_else(|| {
                AbError::Invalid(format!(
                    "Invalid element in the {name} array (not a string)"
                ))
            })
        })
        .collect()
}
