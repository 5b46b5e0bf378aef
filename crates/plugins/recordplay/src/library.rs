//! The recordings: what the `.nfo` index files in the recordings folder describe, as Janus
//! writes and reads them, with each file's codec from its `.mjr` header.

use jano_plugin::Value;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// One recording (complete, or being made).
#[derive(Debug)]
pub struct Recording {
    pub id: u64,
    pub name: String,
    /// `%Y-%m-%d %H:%M:%S`, local time.
    pub date: String,
    /// File names without `.mjr`, relative to the recordings folder.
    pub audio: Option<String>,
    pub video: Option<String>,
    pub data: Option<String>,
    pub acodec: Option<&'static str>,
    pub vcodec: Option<&'static str>,
    pub afmtp: Option<String>,
    pub vfmtp: Option<String>,
    pub opusred_pt: Option<u8>,
    /// The data file holds text (else binary) messages.
    pub textdata: bool,
    pub e2ee: bool,
    /// Its `.nfo` is written: it can be listed and played.
    pub completed: AtomicBool,
}

impl Recording {
    pub fn is_complete(&self) -> bool {
        self.completed.load(Ordering::Acquire)
    }

    /// One entry of `list`.
    pub fn list_entry(&self) -> Value {
        let mut e = json!({
            "id": self.id,
            "name": self.name,
            "date": self.date,
            "audio": self.audio.is_some(),
            "video": self.video.is_some(),
            "data": self.data.is_some(),
        });
        if let Some(c) = self.acodec {
            e["audio_codec"] = json!(c);
        }
        if self.opusred_pt.is_some() {
            e["audio_red"] = json!(true);
        }
        if let Some(c) = self.vcodec {
            e["video_codec"] = json!(c);
        }
        e
    }

    /// The `.nfo` text, as Janus writes it.
    pub fn nfo(&self) -> String {
        let mut s = format!(
            "[{}]\r\nname = {}\r\ndate = {}\r\n",
            self.id, self.name, self.date
        );
        for (key, file) in [
            ("audio", &self.audio),
            ("video", &self.video),
            ("data", &self.data),
        ] {
            if let Some(f) = file {
                s.push_str(&format!("{key} = {f}.mjr\r\n"));
            }
        }
        s
    }
}

/// A recording file's path in the folder (`name` with or without `.mjr`).
pub fn file_path(dir: &Path, name: &str) -> PathBuf {
    if name.ends_with(".mjr") {
        dir.join(name)
    } else {
        dir.join(format!("{name}.mjr"))
    }
}

/// What a `.mjr` header says: codec, fmtp, RED payload type, encryption.
struct Header {
    codec: Option<&'static str>,
    fmtp: Option<String>,
    opusred_pt: Option<u8>,
    e2ee: bool,
    text: bool,
}

fn header(dir: &Path, name: &str) -> Option<Header> {
    let r = jano_mjr::MjrReader::open(file_path(dir, name)).ok()?;
    let info = r.info();
    Some(Header {
        codec: jano_plugin::rtp::codec_name(&info.codec),
        fmtp: info.fmtp.clone().filter(|f| !f.is_empty()),
        opusred_pt: info.opusred_pt,
        e2ee: info.encrypted,
        text: info.codec.eq_ignore_ascii_case("text"),
    })
}

/// Reads one `.nfo` file: `None` when it is not a usable index.
pub fn read_nfo(dir: &Path, path: &Path) -> Option<Recording> {
    let text = std::fs::read_to_string(path).ok()?;
    let cfg = jano_config::Jcfg::parse_ini(&text, &path.to_string_lossy()).ok()?;
    let (cat, group) = cfg.categories().next()?;
    let id: u64 = cat.trim().parse().ok().filter(|id| *id > 0)?;
    let get = |k: &str| group.get_str(k).filter(|v| !v.is_empty());
    let name = get("name")?;
    let date = get("date")?;
    let strip = |f: String| f.strip_suffix(".mjr").map(str::to_owned).unwrap_or(f);
    let audio = get("audio").map(strip);
    let video = get("video").map(strip);
    let data = get("data").map(strip);
    if audio.is_none() && video.is_none() {
        return None;
    }
    let ah = audio.as_deref().and_then(|f| header(dir, f));
    let vh = video.as_deref().and_then(|f| header(dir, f));
    let dh = data.as_deref().and_then(|f| header(dir, f));
    Some(Recording {
        id,
        name,
        date,
        acodec: ah.as_ref().and_then(|h| h.codec),
        vcodec: vh.as_ref().and_then(|h| h.codec),
        afmtp: ah.as_ref().and_then(|h| h.fmtp.clone()),
        vfmtp: vh.as_ref().and_then(|h| h.fmtp.clone()),
        opusred_pt: ah.as_ref().and_then(|h| h.opusred_pt),
        textdata: dh.as_ref().is_none_or(|h| h.text),
        e2ee: ah.as_ref().is_some_and(|h| h.e2ee) || vh.as_ref().is_some_and(|h| h.e2ee),
        audio,
        video,
        data,
        completed: AtomicBool::new(true),
    })
}

/// Every `.nfo` of the folder.
pub fn scan(dir: &Path) -> Vec<Recording> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!("recordplay: can't read the folder {}", dir.display());
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let is_nfo = path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("nfo"));
        if !is_nfo {
            continue;
        }
        match read_nfo(dir, &path) {
            Some(r) => out.push(r),
            None => tracing::warn!("recordplay: skipping {}", path.display()),
        }
    }
    out
}
