//! A mountpoint's sources: an RTP (or data) stream's sockets and their reader tasks, a file,
//! or an RTSP camera's streams; what each packet goes through on its way to the viewers
//! (SRTP, collision, recording, buffering) and the fan-out (or simulcast layers) it reaches
//! them by.

use crate::config::{FileCfg, PortRange, StreamCfg};
use crate::error::{StError, StResult};
use crate::file::Track;
use crate::mountpoint::StreamKind;
use crate::play::{Ctl, OnDemand, Stream};
use jano_plugin::rtp::{parse_rtp, SeqExt};
use jano_plugin::{CoreServices, Dest, Fanout, HandleRef, MediaRouter, RtpExtensions, RtpPacket};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// One source of a mountpoint — an RTP (or data) socket, or a file — and the viewers of its
/// packets.
pub struct Source {
    pub cfg: StreamCfg,
    pub mindex: usize,
    /// The socket an `rtp` stream comes in on (none for a file).
    pub socket: Option<Arc<UdpSocket>>,
    pub local_port: u16,
    /// A `live`/`ondemand` mountpoint's file.
    pub file: Option<FileSource>,
    /// The RTCP socket (`rtcpport`), and where the source's own RTCP came from: keyframe
    /// requests go there.
    rtcp: Option<Arc<UdpSocket>>,
    pub rtcp_local_port: Option<u16>,
    rtcp_peer: Mutex<Option<SocketAddr>>,
    /// The SSRC the source sends with (what a PLI names).
    last_ssrc: std::sync::atomic::AtomicU32,
    throttle: Mutex<jano_plugin::KeyframeThrottle>,
    fan: RwLock<Option<Fanout>>,
    /// Viewers of a data stream (data goes through the plugin, not the fan-out).
    data_viewers: RwLock<Vec<HandleRef>>,
    pub packets: AtomicU64,
    /// Enabled (packets go to the viewers) and stopped, shared with playback tasks.
    pub(crate) ctl: Arc<Ctl>,
    /// A `recording` of the stream in progress.
    pub(crate) rec: crate::record::RecSlot,
    /// The stream comes SRTP-protected (`srtpsuite`/`srtpcrypto`): checked and decrypted here.
    pub(crate) srtp: Option<Mutex<jano_plugin::srtp::SrtpReceiver>>,
    /// `bufferkf`: the latest keyframe, for new viewers.
    kf: Option<Mutex<crate::buffer::KeyframeBuffer>>,
    /// `buffermsg`: the latest data message, for new viewers.
    last_msg: Option<Mutex<Option<Vec<u8>>>>,
    router: Option<Arc<dyn MediaRouter>>,
    /// `collision` of the mountpoint, in ms (0: off).
    pub(crate) collision_ms: u64,
    /// Simulcast: the sockets of layers 1 and 2 (`port2`, `port3`); the main one is layer 0.
    pub extra: Vec<(u8, Arc<UdpSocket>)>,
    /// Simulcast: the receivers of each layer and their switches (instead of `fan`).
    pub layers: Option<jano_plugin::layers::StreamMedia>,
    /// Simulcast: each receiver's link and the layer it wants, for the fallback check.
    pub(crate) wanted: Mutex<Vec<(Arc<jano_plugin::layers::Link>, u8)>>,
    /// Milliseconds since `epoch` of the last packet (0: none yet).
    last_ms: AtomicU64,
    epoch: Instant,
}

/// A file source: its frames, and (`ondemand`) each viewer's playback.
pub struct FileSource {
    pub cfg: FileCfg,
    pub track: Arc<Track>,
    ondemand: Option<OnDemand>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("mid", &self.cfg.mid)
            .field("port", &self.local_port)
            .finish_non_exhaustive()
    }
}

impl Source {
    pub(crate) fn bind(
        cfg: StreamCfg,
        mindex: usize,
        router: Option<&Arc<dyn MediaRouter>>,
        ports: &PortRange,
    ) -> StResult<Source> {
        let ip = cfg.iface.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let socket = match (cfg.mcast, cfg.port) {
            (Some(group), port) => join_group(group, port, cfg.iface, ports),
            (None, 0) => ports.bind(ip),
            (None, p) => UdpSocket::bind(SocketAddr::new(ip, p)),
        }
        .map_err(|e| {
            StError::CantCreate(format!(
                "Can't add 'rtp' stream, error creating {} source stream: {e}",
                cfg.kind.as_str()
            ))
        })?;
        let local_port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        let rtcp = match cfg.rtcp_port {
            None => None,
            Some(0) => Some(ports.bind(ip)),
            Some(p) => Some(UdpSocket::bind(SocketAddr::new(ip, p))),
        }
        .transpose()
        .map_err(|e| {
            StError::CantCreate(format!(
                "Can't add 'rtp' stream, error creating {} RTCP socket: {e}",
                cfg.kind.as_str()
            ))
        })?;
        // Simulcast: the other two layers on ports of their own.
        let mut extra = Vec::new();
        if cfg.simulcast {
            for (layer, p) in [(1u8, cfg.port2), (2, cfg.port3)] {
                let s = match p {
                    0 => ports.bind(ip),
                    p => UdpSocket::bind(SocketAddr::new(ip, p)),
                }
                .map_err(|e| {
                    StError::CantCreate(format!(
                        "Can't add 'rtp' stream, error creating simulcast source stream: {e}"
                    ))
                })?;
                extra.push((layer, Arc::new(s)));
            }
        }
        let mut src = Source::new(cfg, mindex, router);
        src.extra = extra;
        src.rtcp_local_port = rtcp
            .as_ref()
            .and_then(|s| s.local_addr().ok())
            .map(|a| a.port());
        src.socket = Some(Arc::new(socket));
        src.local_port = local_port;
        src.rtcp = rtcp.map(Arc::new);
        Ok(src)
    }

    /// A file source (its `ondemand` playbacks need the services and a router to start).
    pub(crate) fn of_file(
        cfg: StreamCfg,
        file: FileCfg,
        services: &Arc<dyn CoreServices>,
        router: Option<&Arc<dyn MediaRouter>>,
    ) -> StResult<Source> {
        let kind = if file.live { "live" } else { "ondemand" };
        let track = Track::load(&file.filename, file.format)
            .map_err(|e| StError::CantCreate(format!("Can't add '{kind}' stream, {e}")))?;
        let track = Arc::new(track);
        let mut src = Source::new(cfg, 0, router);
        let ondemand = match (file.live, router) {
            (false, Some(r)) => Some(OnDemand::new(
                services.clone(),
                r.clone(),
                src.play_stream(&track),
                src.ctl.clone(),
            )),
            _ => None,
        };
        src.file = Some(FileSource {
            cfg: file,
            track,
            ondemand,
        });
        Ok(src)
    }

    /// A stream an RTSP server sends to our port pair; keyframe requests go to its RTCP port.
    pub(crate) fn of_sockets(
        cfg: StreamCfg,
        mindex: usize,
        rtp: UdpSocket,
        rtcp: UdpSocket,
        server_rtcp: Option<SocketAddr>,
        router: Option<&Arc<dyn MediaRouter>>,
    ) -> Source {
        let mut src = Source::new(cfg, mindex, router);
        src.local_port = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
        src.rtcp_local_port = rtcp.local_addr().ok().map(|a| a.port());
        src.socket = Some(Arc::new(rtp));
        src.rtcp = Some(Arc::new(rtcp));
        src.rtcp_peer = Mutex::new(server_rtcp);
        src
    }

    /// A stream that comes interleaved on an RTSP control connection (no sockets).
    pub(crate) fn interleaved(
        cfg: StreamCfg,
        mindex: usize,
        router: Option<&Arc<dyn MediaRouter>>,
    ) -> Source {
        Source::new(cfg, mindex, router)
    }

    /// Copies of the RTP and RTCP sockets (to set up again onto the same ports).
    pub fn socket_pair(&self) -> Option<(UdpSocket, UdpSocket)> {
        let a = self.socket.as_ref()?.try_clone().ok()?;
        let b = self.rtcp.as_ref()?.try_clone().ok()?;
        Some((a, b))
    }

    pub fn is_video(&self) -> bool {
        self.cfg.kind == StreamKind::Video
    }

    /// The mountpoint is gone.
    pub fn stopped(&self) -> bool {
        self.ctl.stop.load(Ordering::Acquire)
    }

    /// What a playback of this (file) source sends.
    pub(crate) fn play_stream(&self, track: &Arc<Track>) -> Stream {
        Stream {
            track: track.clone(),
            mindex: self.mindex,
            pt: self.cfg.pt.unwrap_or(0),
            codec: self.cfg.codec.unwrap_or("opus"),
        }
    }

    fn new(cfg: StreamCfg, mindex: usize, router: Option<&Arc<dyn MediaRouter>>) -> Source {
        let (bufferkf, buffermsg) = (cfg.bufferkf, cfg.buffermsg);
        let (simulcast, mid) = (cfg.simulcast, cfg.mid.clone());
        Source {
            cfg,
            mindex,
            socket: None,
            local_port: 0,
            file: None,
            rtcp: None,
            rtcp_local_port: None,
            rtcp_peer: Mutex::new(None),
            last_ssrc: std::sync::atomic::AtomicU32::new(0),
            throttle: Mutex::new(jano_plugin::KeyframeThrottle::new(Duration::from_millis(
                500,
            ))),
            // A simulcast stream's receivers are on its per-layer fan-outs (`layers`).
            fan: RwLock::new(
                router
                    .filter(|_| !simulcast)
                    .map(|r| Fanout::new(r.clone())),
            ),
            data_viewers: RwLock::new(Vec::new()),
            packets: AtomicU64::new(0),
            ctl: Arc::new(Ctl::default()),
            rec: RwLock::new(None),
            srtp: None,
            kf: bufferkf.then(|| Mutex::new(Default::default())),
            last_msg: buffermsg.then(|| Mutex::new(None)),
            router: router.cloned(),
            collision_ms: 0,
            extra: Vec::new(),
            wanted: Mutex::new(Vec::new()),
            layers: simulcast
                .then(|| jano_plugin::layers::StreamMedia::new(router, mindex, mid, true, true)),
            last_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Milliseconds since the last packet, if one came.
    pub fn age_ms(&self) -> Option<u64> {
        let last = self.last_ms.load(Ordering::Relaxed);
        (last != 0).then(|| (self.epoch.elapsed().as_millis() as u64).saturating_sub(last))
    }

    /// Asks the source for a keyframe (RTCP PLI to where its RTCP comes from), at most twice
    /// a second; nothing without `rtcpport` or before the source sent RTCP.
    pub fn request_keyframe(&self) {
        let (Some(sock), Some(peer)) = (
            &self.rtcp,
            *self.rtcp_peer.lock().unwrap_or_else(|e| e.into_inner()),
        ) else {
            return;
        };
        let allow = self
            .throttle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(Instant::now());
        if !allow {
            return;
        }
        let mut pli = vec![0x81, 206, 0, 2, 0, 0, 0, 1];
        pli.extend_from_slice(&self.last_ssrc.load(Ordering::Relaxed).to_be_bytes());
        let _ = sock.send_to(&pli, peer);
    }

    /// A viewer's m-line starts receiving this stream; a new `epoch` (after a pause) makes the
    /// engine start a new sequence segment, so the viewer sees no gap for what it missed.
    pub fn add_viewer(
        &self,
        h: &HandleRef,
        mindex: usize,
        epoch: u32,
        playout: Option<(u16, u16)>,
    ) {
        if let Some(od) = self.ondemand() {
            od.add(h.handle_id, mindex, epoch);
            return;
        }
        if self.cfg.kind == StreamKind::Data {
            let mut g = self.data_viewers.write().unwrap_or_else(|e| e.into_inner());
            if !g.iter().any(|x| x.handle_id == h.handle_id) {
                g.push(h.clone());
            }
            return;
        }
        let mut g = self.fan.write().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = g.as_mut() {
            let mut d = Dest::new(h.handle_id, mindex);
            d.epoch = epoch;
            d.playout = playout;
            if !f
                .iter()
                .any(|x| x.handle_id == d.handle_id && x.mindex == d.mindex)
            {
                self.send_keyframe(d);
            }
            f.insert(d);
        }
    }

    /// `buffermsg`: the latest data message to a viewer whose data channel just opened.
    pub fn send_last_msg(&self, h: &HandleRef, services: &dyn CoreServices) {
        let last = self
            .last_msg
            .as_ref()
            .and_then(|m| m.lock().unwrap_or_else(|e| e.into_inner()).clone());
        if let Some(msg) = last {
            services.relay_data(
                h,
                &jano_plugin::DataMessage {
                    label: None,
                    protocol: None,
                    binary: self.cfg.binary,
                    buffer: &msg,
                },
            );
        }
    }

    /// `bufferkf`: the latest keyframe to one new viewer, ahead of the live packets (it goes
    /// to the same worker queue first).
    fn send_keyframe(&self, d: Dest) {
        let (Some(kf), Some(router)) = (&self.kf, &self.router) else {
            return;
        };
        let packets = kf.lock().unwrap_or_else(|e| e.into_inner()).last().to_vec();
        if packets.is_empty() {
            return;
        }
        let mut one = Fanout::new(router.clone());
        one.insert(d);
        for p in &packets {
            one.send(p);
        }
    }

    pub fn remove_viewer(&self, handle_id: u64, mindex: usize) {
        if let Some(od) = self.ondemand() {
            od.pause(handle_id, mindex);
            return;
        }
        self.data_viewers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|x| x.handle_id != handle_id);
        let mut g = self.fan.write().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = g.as_mut() {
            f.remove_dest(handle_id, mindex);
        }
    }

    fn ondemand(&self) -> Option<&OnDemand> {
        self.file.as_ref().and_then(|f| f.ondemand.as_ref())
    }

    /// The viewer left the mountpoint (an `ondemand` playback of theirs ends).
    pub fn forget_viewer(&self, handle_id: u64) {
        if let Some(od) = self.ondemand() {
            od.end(handle_id);
        }
    }

    pub fn viewers(&self) -> usize {
        if let Some(od) = self.ondemand() {
            return od.receiving();
        }
        if let Some(sm) = &self.layers {
            return sm.receivers();
        }
        let fan = self
            .fan
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, Fanout::len);
        fan + self
            .data_viewers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// `collision`: a packet of an SSRC other than the current one while the current one is
    /// still sending (within the window) is someone else's, and dropped.
    fn collides(&self, data: &[u8]) -> bool {
        let Some(ssrc) = data
            .get(8..12)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
        else {
            return true;
        };
        let current = self.last_ssrc.load(Ordering::Relaxed);
        current != 0 && ssrc != current && self.age_ms().is_some_and(|age| age < self.collision_ms)
    }

    /// Simulcast: the layer a receiver wants (a new link, or a new target).
    pub(crate) fn want_layer(&self, link: &Arc<jano_plugin::layers::Link>, layer: u8) {
        let mut g = self.wanted.lock().unwrap_or_else(|e| e.into_inner());
        g.retain(|(l, _)| !Arc::ptr_eq(l, link));
        g.push((link.clone(), layer));
    }

    pub(crate) fn forget_link(&self, link: &Arc<jano_plugin::layers::Link>) {
        self.wanted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(l, _)| !Arc::ptr_eq(l, link));
    }

    /// Simulcast `fallback`: a receiver whose layer went silent moves to the best active one at
    /// or below what it wants (and back up when that layer returns), on that layer's keyframe.
    pub fn check_layers(&self, window_ms: u64) {
        let Some(sm) = &self.layers else { return };
        let wanted = self
            .wanted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut asked = false;
        for (link, target) in wanted {
            let want = jano_plugin::layers::pick_layer(usize::from(target), |x| {
                sm.layer_active(x, window_ms)
            });
            let going = link.pending().or(link.current());
            if going != Some(want) && sm.layer_active(want, window_ms) {
                sm.switch_to(&link, want);
                asked = true;
            }
        }
        if asked {
            self.request_keyframe();
        }
    }

    /// A packet came from the source (for `info`'s counters and age).
    pub(crate) fn count(&self) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        let now = (self.epoch.elapsed().as_millis() as u64).max(1);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// One datagram from the source.
    pub(crate) fn on_datagram(
        &self,
        data: &[u8],
        seq: &mut SeqExt,
        services: &dyn CoreServices,
        substream: Option<u8>,
    ) {
        let plain;
        let data = match &self.srtp {
            Some(rx) => match rx.lock().unwrap_or_else(|e| e.into_inner()).unprotect(data) {
                Ok(p) => {
                    plain = p;
                    &plain[..]
                }
                // Not from the holder of the key, or damaged: dropped, as Janus does.
                Err(_) => return,
            },
            None => data,
        };
        if self.collision_ms > 0 && self.cfg.kind != StreamKind::Data && self.collides(data) {
            return;
        }
        self.count();
        if !self.ctl.enabled.load(Ordering::Relaxed) {
            return;
        }
        crate::record::save(&self.rec, data, self.cfg.kind == StreamKind::Data);
        if let Some(m) = &self.last_msg {
            *m.lock().unwrap_or_else(|e| e.into_inner()) = Some(data.to_vec());
        }
        if self.cfg.kind == StreamKind::Data {
            let viewers = self
                .data_viewers
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            for h in viewers {
                services.relay_data(
                    &h,
                    &jano_plugin::DataMessage {
                        label: None,
                        protocol: None,
                        binary: self.cfg.binary,
                        buffer: data,
                    },
                );
            }
            return;
        }
        let (Some(h), Some(kind), Some(codec)) =
            (parse_rtp(data), self.cfg.kind.media(), self.cfg.codec)
        else {
            return;
        };
        self.last_ssrc.store(h.ssrc, Ordering::Relaxed);
        let payload = data.get(h.payload_at..h.payload_end).unwrap_or_default();
        let packet = RtpPacket {
            mindex: self.mindex,
            kind,
            pt: h.pt,
            codec,
            seq: seq.extend(h.seq),
            timestamp: h.ts,
            marker: h.marker,
            ssrc: h.ssrc,
            substream,
            ext: RtpExtensions::default(),
            payload: Arc::from(payload),
            svc: None,
        };
        if let Some(kf) = &self.kf {
            kf.lock().unwrap_or_else(|e| e.into_inner()).offer(&packet);
        }
        match &self.layers {
            Some(sm) => sm.forward(&packet, services),
            None => self.deliver(&packet),
        }
    }

    /// A packet to every viewer of the stream.
    pub(crate) fn deliver(&self, packet: &RtpPacket) {
        let g = self.fan.read().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = g.as_ref() {
            f.send(packet);
        }
    }

    pub(crate) fn stop(&self) {
        self.ctl.stop.store(true, Ordering::Release);
    }
}

/// A socket for a multicast stream: bound to the group and port (any port of the range for
/// port 0), the group joined on the `iface` address (any interface when none), and only that
/// group's datagrams taken (`IP_MULTICAST_ALL` off, as Janus sets it).
fn join_group(
    group: Ipv4Addr,
    port: u16,
    iface: Option<IpAddr>,
    ports: &PortRange,
) -> std::io::Result<UdpSocket> {
    let s = match port {
        0 => ports.bind(IpAddr::V4(group))?,
        p => UdpSocket::bind(SocketAddr::new(IpAddr::V4(group), p))?,
    };
    let on = match iface {
        Some(IpAddr::V4(a)) => a,
        _ => Ipv4Addr::UNSPECIFIED,
    };
    s.join_multicast_v4(&group, &on)?;
    {
        use std::os::fd::AsRawFd;
        let off: libc::c_int = 0;
        // SAFETY: a valid socket and a c_int option value of the right size.
        let r = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_MULTICAST_ALL,
                (&off as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(s)
}

/// Reads a source's socket on the gateway's runtime until the mountpoint goes.
pub(crate) fn spawn_reader(services: &Arc<dyn CoreServices>, s: &Arc<Source>) {
    let Some(main) = s.socket.clone() else { return };
    // Simulcast layers are told apart by the port they come to.
    let first = s.layers.as_ref().map(|_| 0u8);
    spawn_socket_reader(services, s, main, first);
    for (layer, socket) in &s.extra {
        spawn_socket_reader(services, s, socket.clone(), Some(*layer));
    }
}

fn spawn_socket_reader(
    services: &Arc<dyn CoreServices>,
    s: &Arc<Source>,
    socket: Arc<UdpSocket>,
    substream: Option<u8>,
) {
    let (src, svc) = (s.clone(), services.clone());
    services.spawn(Box::pin(async move {
        let Ok(sock) = socket.try_clone().and_then(|s| {
            s.set_nonblocking(true)?;
            tokio::net::UdpSocket::from_std(s)
        }) else {
            return;
        };
        let mut buf = vec![0u8; 65536];
        let mut seq = SeqExt::default();
        loop {
            if src.ctl.stop.load(Ordering::Acquire) {
                return;
            }
            let n =
                match tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await {
                    Ok(Ok(n)) => n,
                    Ok(Err(_)) | Err(_) => continue,
                };
            if let Some(data) = buf.get(..n) {
                src.on_datagram(data, &mut seq, &*svc, substream);
            }
        }
    }));
}

/// Learns where the source's RTCP comes from (its content is not needed).
pub(crate) fn spawn_rtcp_reader(services: &Arc<dyn CoreServices>, s: &Arc<Source>) {
    let Some(rtcp) = s.rtcp.clone() else { return };
    let src = s.clone();
    services.spawn(Box::pin(async move {
        let Ok(sock) = rtcp.try_clone().and_then(|s| {
            s.set_nonblocking(true)?;
            tokio::net::UdpSocket::from_std(s)
        }) else {
            return;
        };
        let mut buf = vec![0u8; 2048];
        loop {
            if src.ctl.stop.load(Ordering::Acquire) {
                return;
            }
            if let Ok(Ok((_, from))) =
                tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf)).await
            {
                *src.rtcp_peer.lock().unwrap_or_else(|e| e.into_inner()) = Some(from);
            }
        }
    }));
}
