//! Making an `rtsp` mountpoint (its streams are what the camera's SDP offers), and keeping its
//! session alive: an OPTIONS request every half session
//! timeout (capped by `rtsp_session_timeout`), and when no media came for
//! `rtsp_reconnect_delay` seconds (or the control connection failed), a new session —
//! DESCRIBE/SETUP/PLAY again, onto the same UDP ports, so the readers and viewers carry on.
//! One timer task per mountpoint; each RTSP exchange runs on the blocking pool.

use crate::config::{MpConfig, PortRange, RtspCfg, StreamCfg};
use crate::error::{StError, StResult};
use crate::mountpoint::{Mountpoint, MpId, Source, StreamKind};
use crate::rtsp::{self, Conn, RtspOpts, RtspSession, RtspUrl};
use jano_plugin::{CoreServices, MediaRouter};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An `rtsp` mountpoint: the server is asked for its streams now (a failure fails the
/// `create`, unless `rtsp_failcheck` is off: then the streams asked for are set up from the
/// codec settings and the keeper tries again), then kept alive by a task.
pub fn start(
    id: MpId,
    mut cfg: MpConfig,
    r: RtspCfg,
    services: &Arc<dyn CoreServices>,
    ports: &Arc<PortRange>,
    router: Option<Arc<dyn MediaRouter>>,
) -> StResult<Arc<Mountpoint>> {
    let fail = || StError::CantCreate("Error creating 'RTSP' stream".into());
    let opts = opts_of(&r).map_err(|e| {
        tracing::warn!(mountpoint = %id, "RTSP: {e}");
        fail()
    })?;
    let ip = r.iface.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let (media, session) = match rtsp::connect(&opts, ip, ports, Vec::new()) {
        Ok(mut s) => {
            // The sources take the sockets; the session keeps what its streams are (an
            // interleaved session routes its channels by them).
            let media = std::mem::take(&mut s.media);
            s.media = media.iter().map(rtsp::RtspMedia::without_sockets).collect();
            (media, Some(s))
        }
        Err(e) if r.failcheck => {
            tracing::warn!(mountpoint = %id, url = %opts.url.url, "RTSP: {e}");
            return Err(fail());
        }
        Err(e) => {
            tracing::warn!(mountpoint = %id, url = %opts.url.url, "RTSP: {e}; will retry");
            let mut m = Vec::new();
            for video in [false, true] {
                if (video && r.video) || (!video && r.audio) {
                    let udp = match r.tcp {
                        true => None,
                        false => Some(
                            ports
                                .bind_pair(ip)
                                .map_err(|e| StError::CantCreate(e.to_string()))?,
                        ),
                    };
                    m.push(rtsp::RtspMedia {
                        video,
                        pt: 0,
                        rtpmap: None,
                        fmtp: None,
                        udp,
                        server_rtcp: None,
                        channel: None,
                    });
                }
            }
            (m, None)
        }
    };
    let mut sources = Vec::new();
    for (i, m) in media.into_iter().enumerate() {
        let (kind, mid) = if m.video {
            (StreamKind::Video, "v")
        } else {
            (StreamKind::Audio, "a")
        };
        let (pt, codec, fmtp) = if m.video {
            (r.video_pt, r.video_codec.clone(), r.video_fmtp.clone())
        } else {
            (r.audio_pt, r.audio_codec.clone(), r.audio_fmtp.clone())
        };
        let mut s = StreamCfg::new_of(kind, mid);
        s.pt = Some(pt.unwrap_or(m.pt));
        s.codec = codec
            .as_deref()
            .or_else(|| m.rtpmap.as_deref().and_then(|r| r.split('/').next()))
            .and_then(jano_plugin::rtp::codec_name);
        s.rtpmap = m.rtpmap;
        s.fmtp = fmtp.or(m.fmtp);
        cfg.streams.push(s.clone());
        let src = match m.udp {
            Some((rtp, rtcp)) => {
                Source::of_sockets(s, i, rtp, rtcp, m.server_rtcp, router.as_ref())
            }
            None => Source::interleaved(s, i, router.as_ref()),
        };
        sources.push(Arc::new(src));
    }
    let mp = Mountpoint::assemble(id, cfg, sources);
    for s in &mp.sources {
        crate::mountpoint::spawn_reader(services, s);
        crate::mountpoint::spawn_rtcp_reader(services, s);
    }
    let keeper = Keeper {
        sources: mp.sources.clone(),
        cfg: r,
        opts,
        ports: ports.clone(),
    };
    spawn(services, keeper, session);
    Ok(mp)
}

/// The client options of a configuration.
pub fn opts_of(c: &RtspCfg) -> Result<RtspOpts, String> {
    Ok(RtspOpts {
        url: RtspUrl::parse(&c.url)?,
        user: c.user.clone(),
        pass: c.pass.clone(),
        audio: c.audio,
        video: c.video,
        timeout: Duration::from_secs(c.timeout),
        conn_timeout: Duration::from_secs(c.conn_timeout),
        quirk: c.quirk,
        tcp: c.tcp,
    })
}

/// What the task needs: the mountpoint's sources (their sockets, ages and stop switch).
pub struct Keeper {
    pub sources: Vec<Arc<Source>>,
    pub cfg: RtspCfg,
    pub opts: RtspOpts,
    /// The plugin's port range (a reconnect may need new pairs).
    pub ports: Arc<PortRange>,
}

impl Keeper {
    /// The mountpoint is gone.
    pub(crate) fn stopped(&self) -> bool {
        self.sources.iter().any(|s| s.stopped())
    }

    pub(crate) fn ip(&self) -> IpAddr {
        self.cfg.iface.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// The keep-alive period of a session: half its timeout, capped by `rtsp_session_timeout`.
    pub(crate) fn period(&self, timeout: Duration) -> Duration {
        let mut period = timeout / 2;
        if self.cfg.session_timeout > 0 {
            period = period.min(Duration::from_secs(self.cfg.session_timeout) / 2);
        }
        period.max(Duration::from_secs(1))
    }
}

/// The part of a session the task keeps.
struct Live {
    conn: Conn,
    session: String,
    control: String,
    period: Duration,
}

fn live_of(s: RtspSession, k: &Keeper) -> Live {
    Live {
        period: k.period(s.timeout),
        conn: s.conn,
        session: s.session,
        control: s.control,
    }
}

/// Runs `f` on the blocking pool and waits for it.
pub(crate) async fn blocking<T: Send + 'static>(
    services: &Arc<dyn CoreServices>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    services.spawn_blocking(Box::new(move || {
        let _ = tx.send(f());
    }));
    rx.await.ok()
}

pub fn spawn(services: &Arc<dyn CoreServices>, k: Keeper, session: Option<RtspSession>) {
    let svc = services.clone();
    let tcp = match &session {
        Some(s) => s.tcp,
        None => k.cfg.tcp,
    };
    if tcp {
        services.spawn(Box::pin(crate::interleave::run(svc, k, session)));
    } else {
        services.spawn(Box::pin(run(svc, k, session)));
    }
}

async fn run(services: Arc<dyn CoreServices>, k: Keeper, session: Option<RtspSession>) {
    let delay = Duration::from_secs(k.cfg.reconnect_delay);
    let ip = k.ip();
    let mut live = session.map(|s| live_of(s, &k));
    let mut since = Instant::now();
    let mut last_alive = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if k.sources.iter().any(|s| s.stopped()) {
            if let Some(mut l) = live.take() {
                let _ = blocking(&services, move || {
                    l.conn
                        .request("TEARDOWN", &l.control, &[("Session", l.session.clone())])
                })
                .await;
            }
            return;
        }
        // Media stopped (or never came) for the reconnect delay: the server went away.
        let silent = since.elapsed() >= delay
            && k.sources
                .iter()
                .all(|s| s.age_ms().is_none_or(|a| a >= delay.as_millis() as u64));
        if live.is_none() || silent {
            if since.elapsed() < delay {
                continue;
            }
            tracing::warn!(url = %k.opts.url.url, "RTSP: no media, reconnecting");
            let sockets: Vec<_> = k
                .sources
                .iter()
                .filter_map(|s| {
                    let (a, b) = s.socket_pair()?;
                    Some((s.is_video(), a, b))
                })
                .collect();
            let (opts, ports) = (k.opts.clone(), k.ports.clone());
            let res = blocking(&services, move || rtsp::connect(&opts, ip, &ports, sockets)).await;
            since = Instant::now();
            last_alive = since;
            live = match res {
                Some(Ok(s)) => {
                    tracing::info!(url = %k.opts.url.url, "RTSP: reconnected");
                    Some(live_of(s, &k))
                }
                Some(Err(e)) => {
                    tracing::warn!(url = %k.opts.url.url, "RTSP: reconnect failed: {e}");
                    None
                }
                None => None,
            };
            continue;
        }
        let Some(l) = live.take() else { continue };
        if last_alive.elapsed() < l.period {
            live = Some(l);
            continue;
        }
        last_alive = Instant::now();
        let mut l = l;
        let back = blocking(&services, move || {
            let r = l
                .conn
                .request("OPTIONS", &l.control, &[("Session", l.session.clone())]);
            (l, r)
        })
        .await;
        live = match back {
            Some((l, Ok(_))) => Some(l),
            Some((_, Err(e))) => {
                tracing::warn!(url = %k.opts.url.url, "RTSP keep-alive failed: {e}");
                // Reconnect on the next round.
                since = Instant::now().checked_sub(delay).unwrap_or(since);
                None
            }
            None => None,
        };
    }
}
