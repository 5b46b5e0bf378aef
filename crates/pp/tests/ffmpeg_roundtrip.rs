//! End to end: ffmpeg encodes a few seconds of test video and audio and sends them as RTP to
//! UDP sockets bound here; the packets are recorded to `.mjr` files with jano-mjr's writer
//! (with a duplicate and a swapped pair thrown in), the `jano-pp` binary converts them, and
//! ffprobe checks codec and duration of the results.
//!
//! Needs `ffmpeg` and `ffprobe` on PATH. Without them the tests fail, unless
//! `JANO_PP_NO_FFMPEG=1` is set, in which case they are skipped with a message.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use jano_mjr::{MediaKind, Recorder};

/// Length of the generated media, seconds.
const SECONDS: f64 = 3.0;

fn tool_ok(name: &str) -> bool {
    Command::new(name)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether to run; panics (fails the test) when ffmpeg is missing and skipping was not asked.
fn ffmpeg_available() -> bool {
    if tool_ok("ffmpeg") && tool_ok("ffprobe") {
        return true;
    }
    if std::env::var("JANO_PP_NO_FFMPEG").as_deref() == Ok("1") {
        eprintln!("skipping: ffmpeg/ffprobe not found and JANO_PP_NO_FFMPEG=1");
        return false;
    }
    panic!("ffmpeg and ffprobe are needed (apt-get install ffmpeg), or set JANO_PP_NO_FFMPEG=1 to skip");
}

/// Receives RTP on a loopback socket until `done` is set and the socket has gone quiet.
fn capture(sock: UdpSocket, done: Arc<AtomicBool>) -> thread::JoinHandle<Vec<Vec<u8>>> {
    thread::spawn(move || {
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut pkts = Vec::new();
        let mut buf = [0u8; 2048];
        let start = Instant::now();
        loop {
            match sock.recv(&mut buf) {
                Ok(n) => pkts.push(buf[..n].to_vec()),
                Err(_) if done.load(Ordering::SeqCst) => break,
                Err(_) => {}
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "capture never ended"
            );
        }
        pkts
    })
}

/// Runs ffmpeg with one RTP output per `(ffmpeg output options, name)`; returns the packets
/// each output sent.
fn ffmpeg_rtp(inputs: &[&str], outputs: &[(&str, &str)]) -> Vec<Vec<Vec<u8>>> {
    let done = Arc::new(AtomicBool::new(false));
    let mut args: Vec<String> = ["-hide_banner", "-loglevel", "error", "-nostdin"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(
        inputs
            .iter()
            .flat_map(|i| i.split_whitespace())
            .map(str::to_string),
    );
    let mut handles = Vec::new();
    for (opts, _) in outputs {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        args.extend(opts.split_whitespace().map(str::to_string));
        args.extend(["-rtpflags", "skip_rtcp", "-f", "rtp"].map(str::to_string));
        args.push(format!("rtp://127.0.0.1:{port}?pkt_size=1200"));
        handles.push(capture(sock, done.clone()));
    }
    let out = Command::new("ffmpeg").args(&args).output().unwrap();
    done.store(true, Ordering::SeqCst);
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (pkts, (_, name)) in res.iter().zip(outputs) {
        assert!(
            pkts.len() > 20,
            "{name}: only {} packets captured",
            pkts.len()
        );
    }
    res
}

/// Records packets to `<dir>/<name>.mjr`, with packet 21 duplicated after packet 25 and
/// packets 10 and 11 swapped, as a network would.
fn record(dir: &Path, name: &str, kind: MediaKind, codec: &str, mut pkts: Vec<Vec<u8>>) -> PathBuf {
    pkts.swap(10, 11);
    let dup = pkts[21].clone();
    pkts.insert(26, dup);
    let mut r = Recorder::create(Some(dir), name, kind, codec, None).unwrap();
    for p in &pkts {
        r.save_rtp(p).unwrap();
    }
    r.close().unwrap()
}

struct Fixture {
    dir: PathBuf,
    vp8: PathBuf,
    opus: PathBuf,
    pcmu: PathBuf,
    h264: PathBuf,
    vp9: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("jano-pp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let video = format!("-re -f lavfi -i testsrc=size=320x240:rate=30:duration={SECONDS}");
        let audio = format!("-re -f lavfi -i sine=frequency=440:sample_rate=48000:duration={SECONDS}");
        let d = dir.clone();
        // H.264 and VP9 in their own ffmpeg, alongside the first, to keep the wall time short.
        let h264 = {
            let video = video.clone();
            thread::spawn(move || {
                ffmpeg_rtp(
                    &[&video],
                    &[(
                        "-map 0:v -c:v libx264 -profile:v baseline -pix_fmt yuv420p -tune zerolatency -g 30 -bf 0 -bsf:v dump_extra=freq=keyframe",
                        "h264",
                    )],
                )
            })
        };
        let vp9 = {
            let video = video.clone();
            thread::spawn(move || {
                ffmpeg_rtp(
                    &[&video],
                    &[("-map 0:v -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 300k -g 30 -strict experimental", "vp9")],
                )
            })
        };
        let mut main = ffmpeg_rtp(
            &[&video, &audio],
            &[
                ("-map 0:v -c:v libvpx -deadline realtime -cpu-used 8 -b:v 300k -g 30 -auto-alt-ref 0", "vp8"),
                ("-map 1:a -c:a libopus -b:a 32k", "opus"),
                ("-map 1:a -c:a pcm_mulaw -ar 8000 -ac 1", "pcmu"),
            ],
        )
        .into_iter();
        let h264 = h264.join().unwrap().remove(0);
        let vp9 = vp9.join().unwrap().remove(0);
        Fixture {
            vp8: record(&d, "video-vp8", MediaKind::Video, "vp8", main.next().unwrap()),
            opus: record(&d, "audio-opus", MediaKind::Audio, "opus", main.next().unwrap()),
            pcmu: record(&d, "audio-pcmu", MediaKind::Audio, "pcmu", main.next().unwrap()),
            h264: record(&d, "video-h264", MediaKind::Video, "h264", h264),
            vp9: record(&d, "video-vp9", MediaKind::Video, "vp9", vp9),
            dir,
        }
    })
}

fn jano_pp(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jano-pp"))
        .args(args)
        .output()
        .unwrap()
}

fn convert(src: &Path, extra: &[&Path], out_name: &str) -> PathBuf {
    let f = fixture();
    let out = f.dir.join(out_name);
    let mut args: Vec<&Path> = extra.to_vec();
    args.push(src);
    args.push(&out);
    let o = jano_pp(&args);
    assert!(
        o.status.success(),
        "jano-pp {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// `(codec_name, duration)` of each stream; the container's duration where a stream has none
/// (Matroska).
fn probe(file: &Path) -> Vec<(String, f64)> {
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,duration:format=duration",
            "-of",
            "json",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ffprobe {file:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let num = |x: &serde_json::Value| x.as_str().and_then(|s| s.parse::<f64>().ok());
    let format_duration = num(&v["format"]["duration"]);
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let d = num(&s["duration"]).or(format_duration).unwrap_or(0.0);
            (s["codec_name"].as_str().unwrap_or("").to_string(), d)
        })
        .collect()
}

fn assert_streams(file: &Path, codecs: &[&str]) {
    let streams = probe(file);
    let names: Vec<&str> = streams.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, codecs, "{file:?}");
    for (codec, d) in &streams {
        assert!(
            (d - SECONDS).abs() <= SECONDS * 0.1,
            "{file:?}: {codec} lasts {d} s, expected {SECONDS} s ± 10%"
        );
    }
}

#[test]
fn vp8_to_webm() {
    if !ffmpeg_available() {
        return;
    }
    let out = convert(&fixture().vp8, &[], "vp8.webm");
    assert_streams(&out, &["vp8"]);
}

#[test]
fn opus_to_ogg() {
    if !ffmpeg_available() {
        return;
    }
    let out = convert(&fixture().opus, &[], "opus.opus");
    assert_streams(&out, &["opus"]);
}

#[test]
fn vp8_and_opus_to_one_webm() {
    if !ffmpeg_available() {
        return;
    }
    let f = fixture();
    let out = convert(&f.vp8, &[Path::new("--audio"), &f.opus], "av.webm");
    assert_streams(&out, &["vp8", "opus"]);
}

#[test]
fn pcmu_to_wav() {
    if !ffmpeg_available() {
        return;
    }
    let out = convert(&fixture().pcmu, &[], "pcmu.wav");
    assert_streams(&out, &["pcm_s16le"]);
}

#[test]
fn h264_to_mp4() {
    if !ffmpeg_available() {
        return;
    }
    let out = convert(&fixture().h264, &[], "h264.mp4");
    assert_streams(&out, &["h264"]);
}

#[test]
fn vp9_to_webm() {
    if !ffmpeg_available() {
        return;
    }
    let out = convert(&fixture().vp9, &[], "vp9.webm");
    assert_streams(&out, &["vp9"]);
}

#[test]
fn parse_reports_the_duplicate_and_the_swap() {
    if !ffmpeg_available() {
        return;
    }
    let o = jano_pp(&[Path::new("--parse"), &fixture().vp8]);
    assert!(o.status.success());
    let s = String::from_utf8(o.stdout).unwrap();
    for line in [
        "kind: video",
        "codec: vp8",
        "duplicates: 1",
        "out of order: 1",
        "gaps: 0",
    ] {
        assert!(s.lines().any(|l| l == line), "missing {line:?} in\n{s}");
    }
    let o = jano_pp(&[Path::new("--header"), &fixture().opus]);
    let h: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (h["t"].as_str(), h["c"].as_str()),
        (Some("a"), Some("opus"))
    );
}

fn assert_fails(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected failure, got success: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one-line error expected: {err}"
    );
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
}

#[test]
fn truncated_foreign_and_unsupported_inputs_fail_clearly() {
    if !ffmpeg_available() {
        return;
    }
    let f = fixture();
    let bytes = std::fs::read(&f.vp8).unwrap();
    let cut = f.dir.join("cut.mjr");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    let out = f.dir.join("cut.webm");
    assert_fails(&jano_pp(&[&cut, &out]), "truncated");
    // --salvage keeps what precedes the damage.
    let o = jano_pp(&[Path::new("--salvage"), &cut, &out]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_streams(&out, &["vp8"]);

    let foreign = f.dir.join("foreign.mjr");
    std::fs::write(&foreign, b"RIFF\x24\0\0\0WAVEfmt this is not a recording").unwrap();
    assert_fails(
        &jano_pp(&[&foreign, &f.dir.join("x.opus")]),
        "not an .mjr recording",
    );

    assert_fails(
        &jano_pp(&[&f.opus, &f.dir.join("x.mp4")]),
        "cannot be converted to .mp4",
    );
    assert_fails(
        &jano_pp(&[&f.vp8, &f.dir.join("x.wav")]),
        "cannot be converted to .wav",
    );
    assert_fails(
        &jano_pp(&[&f.vp8, &f.dir.join("x.avi")]),
        "unknown output format",
    );
    assert_fails(
        &jano_pp(&[&f.vp8, Path::new("--audio"), &f.pcmu, &f.dir.join("x.webm")]),
        "--audio needs an Opus audio recording",
    );
}

/// Splits a low-overhead AV1 stream (`ffmpeg -f obu`) into temporal units of OBUs, each OBU
/// without its size field (as RTP carries them); temporal delimiters are left out.
fn av1_temporal_units(stream: &[u8]) -> Vec<Vec<Vec<u8>>> {
    fn leb128(d: &[u8]) -> (usize, usize) {
        let mut v = 0usize;
        for (i, b) in d.iter().enumerate().take(8) {
            v |= usize::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return (v, i + 1);
            }
        }
        panic!("bad leb128");
    }
    let mut tus: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let h = rest[0];
        let hlen = if h & 0x04 != 0 { 2 } else { 1 };
        assert!(h & 0x02 != 0, "OBU without size field");
        let (size, n) = leb128(&rest[hlen..]);
        let mut obu = rest[..hlen].to_vec();
        obu[0] &= !0x02;
        obu.extend_from_slice(&rest[hlen + n..hlen + n + size]);
        rest = &rest[hlen + n + size..];
        if (h >> 3) & 0x0f == 2 {
            tus.push(Vec::new());
        } else if let Some(tu) = tus.last_mut() {
            tu.push(obu);
        }
    }
    tus
}

/// Packetizes AV1 temporal units as RTP (AV1 RTP spec: W=0, every OBU element
/// length-prefixed, OBUs fragmented across packets with the Y/Z bits), 30 fps.
fn av1_rtp(tus: &[Vec<Vec<u8>>]) -> Vec<Vec<u8>> {
    const MAX: usize = 1100;
    let mut out = Vec::new();
    let mut seq = 1000u16;
    for (i, tu) in tus.iter().enumerate() {
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        let mut cur = vec![0u8];
        for obu in tu {
            let mut rest = &obu[..];
            loop {
                let room = MAX.saturating_sub(cur.len() + 2);
                if room < 16 {
                    payloads.push(std::mem::replace(&mut cur, vec![0u8]));
                    continue;
                }
                let take = rest.len().min(room);
                if cur.len() == 1 && rest.len() < obu.len() {
                    cur[0] |= 0x80; // Z: continues the previous packet's OBU
                }
                let mut len = take;
                loop {
                    let b = (len & 0x7f) as u8;
                    len >>= 7;
                    cur.push(if len > 0 { b | 0x80 } else { b });
                    if len == 0 {
                        break;
                    }
                }
                cur.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if rest.is_empty() {
                    break;
                }
                cur[0] |= 0x40; // Y: the last OBU goes on in the next packet
                payloads.push(std::mem::replace(&mut cur, vec![0u8]));
            }
        }
        payloads.push(cur);
        let n = payloads.len();
        for (k, p) in payloads.into_iter().enumerate() {
            let mut pkt = vec![0x80, if k + 1 == n { 0x80 | 96 } else { 96 }];
            pkt.extend_from_slice(&seq.to_be_bytes());
            pkt.extend_from_slice(&(i as u32 * 3000).to_be_bytes());
            pkt.extend_from_slice(&0x0a0b_0c0du32.to_be_bytes());
            pkt.extend_from_slice(&p);
            out.push(pkt);
            seq = seq.wrapping_add(1);
        }
    }
    out
}

#[test]
fn av1_to_webm_and_mp4() {
    if !ffmpeg_available() {
        return;
    }
    let f = fixture();
    let obu = f.dir.join("av1.obu");
    let o = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc=size=320x240:rate=30:duration={SECONDS}"))
        .args([
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libaom-av1",
            "-usage",
            "realtime",
            "-cpu-used",
            "8",
        ])
        .args(["-g", "30", "-b:v", "200k", "-f", "obu"])
        .arg(&obu)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let tus = av1_temporal_units(&std::fs::read(&obu).unwrap());
    assert_eq!(tus.len(), 90);
    let pkts = av1_rtp(&tus);
    assert!(pkts.len() > tus.len(), "keyframes should be fragmented");
    let rec = record(&f.dir, "video-av1", MediaKind::Video, "av1", pkts);
    assert_streams(&convert(&rec, &[], "av1.webm"), &["av1"]);
    assert_streams(&convert(&rec, &[], "av1.mp4"), &["av1"]);
}

/// Re-records `src` without the stored frames in `drop`, as if the network lost them.
fn without(
    src: &Path,
    name: &str,
    kind: MediaKind,
    codec: &str,
    drop: std::ops::Range<usize>,
) -> PathBuf {
    let rec = jano_mjr::read_file(src).unwrap();
    let f = fixture();
    let mut r = Recorder::create(Some(&f.dir), name, kind, codec, None).unwrap();
    for (i, fr) in rec.frames.iter().enumerate() {
        if !drop.contains(&i) {
            r.save_rtp(&fr.data).unwrap();
        }
    }
    r.close().unwrap()
}

/// Errors ffmpeg reports while decoding the whole file.
fn decode_errors(file: &Path) -> String {
    let o = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-nostdin", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn losses_skip_broken_video_and_keep_audio_time() {
    if !ffmpeg_available() {
        return;
    }
    let f = fixture();
    // Lose the first packet of frame 40, in the middle of the second group of pictures
    // (keyframes every 30 frames): frames 40 to 59 cannot be decoded.
    let stored = jano_mjr::read_file(&f.vp8).unwrap().frames;
    let ts0 = stored
        .iter()
        .filter_map(|fr| fr.rtp_timestamp())
        .min()
        .unwrap();
    let i = stored
        .iter()
        .position(|fr| fr.rtp_timestamp() == Some(ts0 + 40 * 3000))
        .unwrap();
    let lossy = without(&f.vp8, "lossy-vp8", MediaKind::Video, "vp8", i..i + 1);
    let parse = jano_pp(&[Path::new("--parse"), &lossy]);
    let s = String::from_utf8(parse.stdout).unwrap();
    assert!(s.lines().any(|l| l == "lost packets: 1"), "{s}");
    let out = convert(&lossy, &[], "lossy.webm");
    assert_streams(&out, &["vp8"]);
    assert_eq!(decode_errors(&out), "");
    let frames = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let frames: usize = String::from_utf8_lossy(&frames.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(
        (65..=75).contains(&frames),
        "{frames} frames: frames 40 to 59 should be gone"
    );

    let lossy = without(&f.opus, "lossy-opus", MediaKind::Audio, "opus", 60..70);
    let out = convert(&lossy, &[], "lossy.opus");
    assert_streams(&out, &["opus"]);
    assert_eq!(decode_errors(&out), "");
}
