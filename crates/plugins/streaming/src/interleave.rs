//! RTSP over TCP: the media of an `rtsp` mountpoint interleaved on its control connection
//! (`$`, channel, length, packet — RFC 2326 §10.12). One task per mountpoint reads the
//! connection, hands each RTP packet to its stream's viewers, answers nothing but sends the
//! OPTIONS keep-alives, and when the connection ends (or no media came for
//! `rtsp_reconnect_delay`) sets the session up again.

use crate::mountpoint::Source;
use crate::pull::{blocking, Keeper};
use crate::rtsp::{self, RtspSession};
use jano_plugin::rtp::SeqExt;
use jano_plugin::CoreServices;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes the reader holds at most while a frame or response is incomplete.
const MAX_BUFFER: usize = 1 << 20;

pub async fn run(services: Arc<dyn CoreServices>, k: Keeper, session: Option<RtspSession>) {
    let delay = Duration::from_secs(k.cfg.reconnect_delay);
    let mut current = session;
    loop {
        if k.stopped() {
            return;
        }
        let Some(s) = current.take() else {
            tokio::time::sleep(delay).await;
            if k.stopped() {
                return;
            }
            let (opts, ip, ports) = (k.opts.clone(), k.ip(), k.ports.clone());
            match blocking(&services, move || {
                rtsp::connect(&opts, ip, &ports, Vec::new())
            })
            .await
            {
                Some(Ok(s)) => {
                    tracing::info!(url = %k.opts.url.url, "RTSP (TCP): connected");
                    current = Some(s);
                }
                Some(Err(e)) => tracing::warn!(url = %k.opts.url.url, "RTSP (TCP): {e}"),
                None => {}
            }
            continue;
        };
        let why = serve(&services, &k, s).await;
        if k.stopped() {
            return;
        }
        tracing::warn!(url = %k.opts.url.url, "RTSP (TCP): {why}; reconnecting");
    }
}

/// Serves one session until its connection ends; says why.
async fn serve(services: &Arc<dyn CoreServices>, k: &Keeper, s: RtspSession) -> String {
    let RtspSession {
        mut conn,
        session,
        timeout,
        media,
        control,
        ..
    } = s;
    // Channel → the stream it carries (matched by kind: the order can change on reconnect).
    let mut routes: Vec<(u8, Arc<Source>, SeqExt)> = Vec::new();
    for m in &media {
        let (Some(ch), Some(src)) = (
            m.channel,
            k.sources.iter().find(|s| s.is_video() == m.video),
        ) else {
            continue;
        };
        routes.push((ch, src.clone(), SeqExt::default()));
    }
    let stream = match conn.stream_clone().and_then(|s| {
        s.set_nonblocking(true)?;
        tokio::net::TcpStream::from_std(s)
    }) {
        Ok(s) => s,
        Err(e) => return format!("cannot read the connection: {e}"),
    };
    let (mut rd, mut wr) = stream.into_split();
    let period = k.period(timeout);
    let silence = Duration::from_secs(k.cfg.reconnect_delay);
    let mut last_ka = Instant::now();
    let mut last_media = Instant::now();
    let mut buf: Vec<u8> = Vec::with_capacity(64 << 10);
    let mut chunk = vec![0u8; 64 << 10];
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            r = rd.read(&mut chunk) => {
                let n = match r {
                    Ok(0) => return "the server closed the connection".into(),
                    Ok(n) => n,
                    Err(e) => return format!("read: {e}"),
                };
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                if buf.len() > MAX_BUFFER {
                    return "the server sent something that is neither RTSP nor media".into();
                }
                let got = drain(&mut buf, &mut routes, &**services);
                if got {
                    last_media = Instant::now();
                }
            }
            _ = tick.tick() => {
                if k.stopped() {
                    let req = conn.format("TEARDOWN", &control, &[("Session", session.clone())]);
                    let _ = wr.write_all(&req).await;
                    return "stopped".into();
                }
                if last_media.elapsed() >= silence {
                    return "no media".into();
                }
                if last_ka.elapsed() >= period {
                    last_ka = Instant::now();
                    let req = conn.format("OPTIONS", &control, &[("Session", session.clone())]);
                    if let Err(e) = wr.write_all(&req).await {
                        return format!("keep-alive: {e}");
                    }
                }
            }
        }
    }
}

/// Takes every complete frame (and RTSP response) off the front of `buf`; whether media came.
fn drain(
    buf: &mut Vec<u8>,
    routes: &mut [(u8, Arc<Source>, SeqExt)],
    services: &dyn CoreServices,
) -> bool {
    let mut at = 0;
    let mut media = false;
    loop {
        let rest = buf.get(at..).unwrap_or_default();
        match rest.first() {
            None => break,
            Some(b'$') => {
                let Some(h) = rest.get(..4) else { break };
                let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
                let Some(packet) = rest.get(4..4 + len) else {
                    break;
                };
                if let Some((_, src, seq)) = routes.iter_mut().find(|(ch, _, _)| *ch == h[1]) {
                    src.on_datagram(packet, seq, services, None);
                    media = true;
                }
                // Odd channels are the server's RTCP: not needed here.
                at += 4 + len;
            }
            Some(_) => {
                // A response (to a keep-alive): its headers, then its body.
                let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
                    break;
                };
                let head = String::from_utf8_lossy(rest.get(..end).unwrap_or_default());
                let body = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if rest.len() < end + 4 + body {
                    break;
                }
                at += end + 4 + body;
            }
        }
    }
    buf.drain(..at.min(buf.len()));
    media
}
