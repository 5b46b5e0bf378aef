//! The dummy publisher (`dummy_publisher`): a participant without a handle that "publishes" one
//! silent stream per codec the room allows, so clients can subscribe to placeholders and later
//! `switch` them to real feeds without renegotiating.

use crate::config::RoomConfig;
use crate::error::{VrError, VrResult};
use crate::json::Body;
use crate::media::StreamMedia;
use crate::publisher::{Phase, PubStream, Publisher};
use crate::room::Room;
use crate::sdp::SdpKind;
use crate::Shared;
use jano_config::Group;
use jano_plugin::{HandleRef, Value};
use std::sync::Arc;

/// `dummy_streams` of a `create` request: `[{codec, fmtp?}]`. As in Janus, an entry without a
/// string `codec` (or with a non-string `fmtp`) is skipped, and an empty or all-invalid list
/// means every codec.
pub fn streams_from_request(b: &Body) -> VrResult<Option<Vec<(String, String)>>> {
    let Some(list) = crate::json::opt_array(b, "dummy_streams")? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for o in list {
        push_entry(
            &mut out,
            o.get("codec").and_then(Value::as_str),
            o.get("fmtp").map(Value::as_str),
        );
    }
    Ok((!out.is_empty()).then_some(out))
}

/// `dummy_streams = ( { codec = "…", fmtp = "…" }, … )` of a room category.
pub fn streams_from_group(g: &Group) -> Option<Vec<(String, String)>> {
    let items = g.get("dummy_streams")?.as_items()?;
    let mut out = Vec::new();
    for item in items {
        let Some(e) = item.as_group() else {
            tracing::warn!("videoroom: dummy_streams entry is not a group, skipped");
            continue;
        };
        let fmtp = e.get("fmtp").map(|v| v.as_str());
        push_entry(&mut out, e.get("codec").and_then(|v| v.as_str()), fmtp);
    }
    (!out.is_empty()).then_some(out)
}

fn push_entry(out: &mut Vec<(String, String)>, codec: Option<&str>, fmtp: Option<Option<&str>>) {
    let Some(codec) = codec else {
        tracing::warn!("videoroom: dummy_streams entry without a codec, skipped");
        return;
    };
    let fmtp = match fmtp {
        None => "none",
        Some(Some(f)) => f,
        Some(None) => {
            tracing::warn!("videoroom: dummy_streams entry with an invalid fmtp, skipped");
            return;
        }
    };
    out.push((codec.to_ascii_lowercase(), fmtp.to_owned()));
}

/// The value of `key=` in an fmtp line.
fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
        .map(|(_, v)| v.trim())
}

/// The placeholder streams: audio codecs first, then video, in the room's order, each on its
/// own m-line (`mid` = its index), limited to `dummy_streams` when given.
pub fn streams(cfg: &RoomConfig) -> Vec<PubStream> {
    let mut out = Vec::new();
    let lists = [
        (SdpKind::Audio, &cfg.audiocodec),
        (SdpKind::Video, &cfg.videocodec),
    ];
    for (kind, codecs) in lists {
        for codec in codecs {
            let fmtp = match &cfg.dummy_streams {
                None => None,
                Some(list) => match list.iter().find(|(c, _)| c == codec) {
                    None => continue,
                    Some((_, f)) => Some(f.as_str()).filter(|f| *f != "none"),
                },
            };
            let has = |needle: &str| fmtp.is_some_and(|f| f.contains(needle));
            let mindex = out.len();
            let opus = codec == "opus";
            out.push(PubStream {
                kind,
                mindex,
                mid: mindex.to_string(),
                disabled: false,
                codec: Some(codec.clone()),
                description: None,
                fec: opus && cfg.opus_fec && has("useinbandfec=1"),
                dtx: opus && cfg.opus_dtx && has("usedtx=1"),
                stereo: opus && has("stereo=1"),
                h264_profile: (codec == "h264")
                    .then(|| {
                        fmtp.and_then(|f| fmtp_param(f, "profile-level-id"))
                            .map(str::to_owned)
                            .or(cfg.h264_profile.clone())
                    })
                    .flatten(),
                vp9_profile: (codec == "vp9")
                    .then(|| {
                        fmtp.and_then(|f| fmtp_param(f, "profile-id"))
                            .map(str::to_owned)
                            .or(cfg.vp9_profile.clone())
                    })
                    .flatten(),
                simulcast: false,
                svc: false,
                moderated: false,
                audiolevel_ext_id: None,
                videoorient_ext_id: None,
                playoutdelay_ext_id: None,
                talking: false,
                media: None,
            });
        }
    }
    out
}

/// Adds the dummy publisher to a room that asks for one (at `create` and when rooms are read
/// from the configuration file). It is active from the start and never sends a packet.
pub fn create(shared: &Shared, room: &Arc<Room>) -> VrResult<()> {
    let mut rs = room.state();
    if !rs.cfg.dummy_publisher || rs.participants.values().any(|p| p.is_dummy()) {
        return Ok(());
    }
    let mut streams = streams(&rs.cfg);
    for s in &mut streams {
        s.media = Some(Arc::new(StreamMedia::new(
            shared.router().as_ref(),
            s.mindex,
            s.mid.clone(),
            s.kind == SdpKind::Video,
            false,
        )));
    }
    let id = rs.new_participant_id(None, shared.ids.strings)?;
    let href = HandleRef {
        session_id: 0,
        handle_id: 0,
        opaque_id: None,
        token: None,
    };
    let p = Publisher::new(
        shared.services.clone(),
        id.clone(),
        rand::random(),
        href,
        room.clone(),
        Some("Dummy publisher".into()),
        None,
    )
    .into_dummy();
    p.set_e2ee(rs.cfg.require_e2ee || rs.cfg.dummy_e2ee);
    {
        let mut st = p.state();
        st.streams = streams;
        st.phase = Phase::Active;
    }
    let p = Arc::new(p);
    p.activate(None);
    if rs.participants.insert(id, p).is_some() {
        return Err(VrError::Unknown("dummy publisher id taken".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Id;

    fn cfg(audio: &[&str], video: &[&str], dummy: Option<Vec<(&str, &str)>>) -> RoomConfig {
        let mut c = RoomConfig::new(&Id::Num(1));
        c.audiocodec = audio.iter().map(|s| s.to_string()).collect();
        c.videocodec = video.iter().map(|s| s.to_string()).collect();
        c.dummy_streams = dummy.map(|l| l.into_iter().map(|(a, b)| (a.into(), b.into())).collect());
        c
    }

    #[test]
    fn one_stream_per_room_codec() {
        let s = streams(&cfg(&["opus", "pcmu"], &["vp8", "h264"], None));
        let got: Vec<(usize, &str, &str)> = s
            .iter()
            .map(|s| (s.mindex, s.mid.as_str(), s.codec.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, "0", "opus"),
                (1, "1", "pcmu"),
                (2, "2", "vp8"),
                (3, "3", "h264")
            ]
        );
        assert_eq!(s[0].kind, SdpKind::Audio);
        assert_eq!(s[3].kind, SdpKind::Video);
        assert!(!s[0].fec, "no fmtp, no FEC");
    }

    #[test]
    fn dummy_streams_filter_and_fmtp() {
        let s = streams(&cfg(
            &["opus", "pcmu"],
            &["vp8", "h264", "vp9"],
            Some(vec![
                ("opus", "useinbandfec=1;usedtx=1;stereo=1"),
                ("h264", "profile-level-id=42e01f;packetization-mode=1"),
                ("vp9", "none"),
                ("av1", "none"),
            ]),
        ));
        let codecs: Vec<&str> = s.iter().filter_map(|s| s.codec.as_deref()).collect();
        assert_eq!(codecs, vec!["opus", "h264", "vp9"]);
        // FEC follows the room's opus_fec (on by default), DTX its opus_dtx (off).
        assert!(s[0].fec && !s[0].dtx && s[0].stereo);
        assert_eq!(s[1].h264_profile.as_deref(), Some("42e01f"));
        assert_eq!(s[2].vp9_profile, None);
        assert_eq!(s[2].mid, "2");
    }
}
