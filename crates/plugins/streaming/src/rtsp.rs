//! The RTSP client of `rtsp` mountpoints (RFC 2326): DESCRIBE (following the SDP's control
//! URLs and `Content-Base`), SETUP of the first audio and the first video stream over UDP
//! (`client_port`, an RTP/RTCP port pair of ours) or, when asked or when the server refuses
//! UDP, interleaved on the control connection (RTP over TCP), PLAY, OPTIONS as the keep-alive,
//! with Basic or Digest authentication. The handshake is plain blocking I/O with the mountpoint's
//! timeouts (it runs when a mountpoint is made, as Janus's does, or on a blocking pool when it
//! reconnects); the media then comes in on the UDP sockets like any `rtp` stream's.

use crate::config::PortRange;
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

/// The largest RTSP response we read (headers and SDP).
const MAX_RESPONSE: usize = 64 << 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspUrl {
    /// The URL without credentials (what requests name).
    pub url: String,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub pass: Option<String>,
}

impl RtspUrl {
    pub fn parse(url: &str) -> Result<RtspUrl, String> {
        let rest = url
            .strip_prefix("rtsp://")
            .ok_or_else(|| format!("not an rtsp:// URL: {url}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (creds, hostport) = match authority.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, authority),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
                h.trim_matches(['[', ']']).to_owned(),
                p.parse::<u16>()
                    .map_err(|_| format!("bad port in RTSP URL: {url}"))?,
            ),
            _ => (hostport.trim_matches(['[', ']']).to_owned(), 554),
        };
        if host.is_empty() {
            return Err(format!("no host in RTSP URL: {url}"));
        }
        let (user, pass) = match creds.map(|c| c.split_once(':').unwrap_or((c, ""))) {
            Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
            None => (None, None),
        };
        let shown = if port == 554 && !hostport.contains(':') {
            host.clone()
        } else {
            hostport.to_owned()
        };
        Ok(RtspUrl {
            url: format!("rtsp://{shown}{path}"),
            host,
            port,
            user,
            pass,
        })
    }
}

/// What a mountpoint asks of the RTSP server.
#[derive(Debug, Clone)]
pub struct RtspOpts {
    pub url: RtspUrl,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub audio: bool,
    pub video: bool,
    /// Janus's `rtsp_timeout` (each request) and `rtsp_conn_timeout` (the TCP connect).
    pub timeout: Duration,
    pub conn_timeout: Duration,
    /// Janus's `rtsp_quirk`: on 404, DESCRIBE again with the path alone.
    pub quirk: bool,
    /// The media comes interleaved on the control connection (RTP over TCP) rather than over
    /// UDP: asked for with `rtsp_tcp`, and taken anyway when the server refuses UDP (461).
    pub tcp: bool,
}

/// One stream the server agreed to send: its codec and our sockets.
#[derive(Debug)]
pub struct RtspMedia {
    pub video: bool,
    pub pt: u8,
    /// `opus/48000/2`…
    pub rtpmap: Option<String>,
    pub fmtp: Option<String>,
    /// Our UDP port pair (none over TCP).
    pub udp: Option<(UdpSocket, UdpSocket)>,
    /// Where the server takes RTCP (its `server_port`): keyframe requests go there.
    pub server_rtcp: Option<SocketAddr>,
    /// Over TCP: the interleaved channel of the stream's RTP (its RTCP is the next one).
    pub channel: Option<u8>,
}

impl RtspMedia {
    /// The same stream, without its sockets.
    pub fn without_sockets(&self) -> RtspMedia {
        RtspMedia {
            video: self.video,
            pt: self.pt,
            rtpmap: self.rtpmap.clone(),
            fmtp: self.fmtp.clone(),
            udp: None,
            server_rtcp: self.server_rtcp,
            channel: self.channel,
        }
    }
}

/// A playing RTSP session: the control connection stays open (servers tie the session to
/// it) and carries the keep-alives.
#[derive(Debug)]
pub struct RtspSession {
    pub conn: Conn,
    pub session: String,
    /// The server's session timeout (`Session: …;timeout=N`), default 60 s.
    pub timeout: Duration,
    pub media: Vec<RtspMedia>,
    /// The URL requests name (the aggregate control URL).
    pub control: String,
    /// The media comes interleaved on `conn`.
    pub tcp: bool,
}

/// An RTSP control connection: requests with CSeq and authentication.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    cseq: u32,
    user: Option<String>,
    pass: Option<String>,
    auth: Option<Challenge>,
}

#[derive(Debug, Clone)]
enum Challenge {
    Basic,
    Digest {
        realm: String,
        nonce: String,
        qop: bool,
        opaque: Option<String>,
    },
}

/// An RTSP response.
#[derive(Debug)]
pub struct Response {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn md5_hex(s: &str) -> String {
    let d = Md5::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn base64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The value of `key` in a `WWW-Authenticate` parameter list (`realm="x", nonce="y"`).
fn param(list: &str, key: &str) -> Option<String> {
    let mut rest = list;
    while let Some(i) = rest.find('=') {
        let k = rest[..i]
            .trim()
            .trim_start_matches(',')
            .trim()
            .rsplit([' ', ','])
            .next()
            .unwrap_or_default();
        let after = &rest[i + 1..];
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (&q[..end], q.get(end + 1..).unwrap_or_default())
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        if k.eq_ignore_ascii_case(key) {
            return Some(v.to_owned());
        }
        rest = next;
    }
    None
}

impl Conn {
    pub fn open(o: &RtspOpts) -> Result<Conn, String> {
        let addrs: Vec<SocketAddr> = (o.url.host.as_str(), o.url.port)
            .to_socket_addrs()
            .map_err(|e| format!("can't resolve {}: {e}", o.url.host))?
            .collect();
        let mut last = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, o.conn_timeout) {
                Ok(s) => {
                    s.set_read_timeout(Some(o.timeout)).ok();
                    s.set_write_timeout(Some(o.timeout)).ok();
                    s.set_nodelay(true).ok();
                    return Ok(Conn {
                        stream: s,
                        cseq: 0,
                        user: o.user.clone().or_else(|| o.url.user.clone()),
                        pass: o.pass.clone().or_else(|| o.url.pass.clone()),
                        auth: None,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => format!("can't connect to {}:{}: {e}", o.url.host, o.url.port),
            None => format!("no address for {}", o.url.host),
        })
    }

    pub fn peer_ip(&self) -> Option<IpAddr> {
        self.stream.peer_addr().ok().map(|a| a.ip())
    }

    /// Another handle on the connection (to read interleaved media and write keep-alives
    /// from a task, this one still formatting the requests).
    pub fn stream_clone(&self) -> std::io::Result<TcpStream> {
        self.stream.try_clone()
    }

    /// A request as bytes, with the next CSeq and the authorization (to write it elsewhere).
    pub fn format(&mut self, method: &str, uri: &str, headers: &[(&str, String)]) -> Vec<u8> {
        self.cseq += 1;
        let mut req = format!(
            "{method} {uri} RTSP/1.0\r\nCSeq: {}\r\nUser-Agent: jano\r\n",
            self.cseq
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(a) = self.authorization(method, uri) {
            req.push_str(&format!("Authorization: {a}\r\n"));
        }
        req.push_str("\r\n");
        req.into_bytes()
    }

    fn authorization(&self, method: &str, uri: &str) -> Option<String> {
        let (user, pass) = (self.user.as_deref()?, self.pass.as_deref().unwrap_or(""));
        match self.auth.as_ref()? {
            Challenge::Basic => Some(format!("Basic {}", base64(&format!("{user}:{pass}")))),
            Challenge::Digest {
                realm,
                nonce,
                qop,
                opaque,
            } => {
                let ha1 = md5_hex(&format!("{user}:{realm}:{pass}"));
                let ha2 = md5_hex(&format!("{method}:{uri}"));
                let mut h = format!(
                    "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\""
                );
                if *qop {
                    let cnonce = format!("{:08x}", rand::random::<u32>());
                    let resp = md5_hex(&format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"));
                    h.push_str(&format!(
                        ", qop=auth, nc=00000001, cnonce=\"{cnonce}\", response=\"{resp}\""
                    ));
                } else {
                    let resp = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
                    h.push_str(&format!(", response=\"{resp}\""));
                }
                if let Some(o) = opaque {
                    h.push_str(&format!(", opaque=\"{o}\""));
                }
                Some(h)
            }
        }
    }

    /// Sends a request (answering an authentication challenge once) and reads its response.
    pub fn request(
        &mut self,
        method: &str,
        uri: &str,
        headers: &[(&str, String)],
    ) -> Result<Response, String> {
        let r = self.send(method, uri, headers)?;
        if r.code != 401 || self.user.is_none() || self.auth.is_some() {
            return Ok(r);
        }
        let challenges: Vec<&str> = r
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("www-authenticate"))
            .map(|(_, v)| v.as_str())
            .collect();
        let digest = challenges
            .iter()
            .find(|c| c.trim_start().to_ascii_lowercase().starts_with("digest"));
        self.auth = match digest {
            Some(d) => Some(Challenge::Digest {
                realm: param(d, "realm").unwrap_or_default(),
                nonce: param(d, "nonce").unwrap_or_default(),
                qop: param(d, "qop").is_some_and(|q| q.split(',').any(|x| x.trim() == "auth")),
                opaque: param(d, "opaque"),
            }),
            None if challenges
                .iter()
                .any(|c| c.trim_start().to_ascii_lowercase().starts_with("basic")) =>
            {
                Some(Challenge::Basic)
            }
            None => return Ok(r),
        };
        self.send(method, uri, headers)
    }

    fn send(
        &mut self,
        method: &str,
        uri: &str,
        headers: &[(&str, String)],
    ) -> Result<Response, String> {
        let req = self.format(method, uri, headers);
        self.stream
            .write_all(&req)
            .map_err(|e| format!("{method}: {e}"))?;
        read_response(&mut self.stream).map_err(|e| format!("{method}: {e}"))
    }
}

/// Reads one response (headers, then `Content-Length` bytes of body); interleaved binary data
/// (`$`) before it is skipped.
pub fn read_response(s: &mut impl Read) -> Result<Response, String> {
    let mut buf: Vec<u8> = Vec::new();
    let mut byte = [0u8; 1];
    // Headers end at an empty line.
    loop {
        if buf.len() > MAX_RESPONSE {
            return Err("response too large".into());
        }
        match s.read(&mut byte) {
            Ok(0) => return Err("connection closed".into()),
            Ok(_) => buf.push(byte[0]),
            Err(e) => return Err(e.to_string()),
        }
        if buf.first() == Some(&b'$') && buf.len() == 4 {
            // An interleaved packet: skip its length.
            let n = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            let mut skip = vec![0u8; n];
            s.read_exact(&mut skip).map_err(|e| e.to_string())?;
            buf.clear();
            continue;
        }
        if buf.ends_with(b"\r\n\r\n") || buf.ends_with(b"\n\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    let mut parts = status.split_whitespace();
    if parts.next().is_none_or(|v| !v.starts_with("RTSP/")) {
        return Err(format!("not an RTSP response: {status:?}"));
    }
    let code = parts
        .next()
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("no status code: {status:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    if len > MAX_RESPONSE {
        return Err("response body too large".into());
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok(Response {
        code,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The first m-section of a kind in a DESCRIBE's SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpMedia {
    pub pt: u8,
    pub control: String,
    pub rtpmap: Option<String>,
    pub fmtp: Option<String>,
}

pub fn sdp_media(sdp: &str, kind: &str) -> Option<SdpMedia> {
    let prefix = format!("m={kind} ");
    let mut lines = sdp.lines().map(str::trim_end);
    let m = lines.find(|l| l.starts_with(&prefix))?;
    let pt = m.split_whitespace().nth(3)?.parse::<u8>().ok()?;
    let (mut control, mut rtpmap, mut fmtp) = (None, None, None);
    for l in lines.take_while(|l| !l.starts_with("m=")) {
        if let Some(c) = l.strip_prefix("a=control:") {
            control = Some(c.trim().to_owned());
        } else if let Some(r) = l.strip_prefix(&format!("a=rtpmap:{pt} ")) {
            rtpmap = Some(r.trim().to_owned());
        } else if let Some(f) = l.strip_prefix(&format!("a=fmtp:{pt} ")) {
            fmtp = Some(f.trim().to_owned());
        }
    }
    Some(SdpMedia {
        pt,
        control: control?,
        rtpmap,
        fmtp,
    })
}

/// The URL a stream's SETUP names: its control attribute when absolute, else appended to the
/// base (`Content-Base`, else the DESCRIBE URL).
pub fn control_url(base: &str, control: &str) -> String {
    if control.starts_with("rtsp://") {
        control.to_owned()
    } else if control == "*" {
        base.to_owned()
    } else {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            control.trim_start_matches('/')
        )
    }
}

/// DESCRIBE, SETUP and PLAY. `sockets` are the pairs of an earlier session to reuse (a
/// reconnect); otherwise new pairs are taken from `ports` on `ip`.
pub fn connect(
    o: &RtspOpts,
    ip: IpAddr,
    ports: &PortRange,
    mut sockets: Vec<(bool, UdpSocket, UdpSocket)>,
) -> Result<RtspSession, String> {
    let mut conn = Conn::open(o)?;
    let accept = [("Accept", "application/sdp".to_owned())];
    let mut url = o.url.url.clone();
    let mut r = conn.request("DESCRIBE", &url, &accept)?;
    if r.code == 404 && o.quirk {
        // Some servers want the path alone.
        if let Some(i) = url
            .find("://")
            .and_then(|i| url[i + 3..].find('/').map(|j| i + 3 + j))
        {
            url = url[i..].to_owned();
            r = conn.request("DESCRIBE", &url, &accept)?;
        }
    }
    if r.code != 200 {
        return Err(format!("DESCRIBE answered {}", r.code));
    }
    let base = r
        .header("Content-Base")
        .or_else(|| r.header("Content-Location"))
        .map(str::to_owned)
        .unwrap_or_else(|| url.clone());
    let mut wanted = Vec::new();
    if o.audio {
        wanted.extend(sdp_media(&r.body, "audio").map(|m| (false, m)));
    }
    if o.video {
        wanted.extend(sdp_media(&r.body, "video").map(|m| (true, m)));
    }
    if wanted.is_empty() {
        return Err("the server's SDP has none of the media asked for".into());
    }
    let server_ip = conn.peer_ip();
    let mut session: Option<String> = None;
    let mut timeout = Duration::from_secs(60);
    let mut media = Vec::new();
    let mut tcp = o.tcp;
    for (i, (video, m)) in wanted.into_iter().enumerate() {
        let uri = control_url(&base, &m.control);
        let setup = |conn: &mut Conn, transport: String, session: &Option<String>| {
            let mut headers = vec![("Transport", transport)];
            if let Some(s) = session {
                headers.push(("Session", s.clone()));
            }
            conn.request("SETUP", &uri, &headers)
        };
        let channel = u8::try_from(2 * i).unwrap_or(0);
        let interleaved = format!(
            "RTP/AVP/TCP;unicast;interleaved={}-{}",
            channel,
            channel + 1
        );
        let mut udp = None;
        let r = if tcp {
            setup(&mut conn, interleaved, &session)?
        } else {
            let (rtp, rtcp) = match sockets.iter().position(|(v, _, _)| *v == video) {
                Some(i) => {
                    let (_, a, b) = sockets.remove(i);
                    (a, b)
                }
                None => ports
                    .bind_pair(ip)
                    .map_err(|e| format!("RTP/RTCP ports: {e}"))?,
            };
            let port = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
            let udp_transport = format!("RTP/AVP/UDP;unicast;client_port={}-{}", port, port + 1);
            let r = setup(&mut conn, udp_transport, &session)?;
            if r.code == 461 && i == 0 {
                // Unsupported transport: the server only streams over TCP.
                tcp = true;
                setup(&mut conn, interleaved, &session)?
            } else {
                udp = Some((rtp, rtcp));
                r
            }
        };
        if r.code != 200 {
            return Err(format!("SETUP answered {}", r.code));
        }
        if let Some(s) = r.header("Session") {
            let mut parts = s.split(';');
            session = parts.next().map(|x| x.trim().to_owned());
            for p in parts {
                if let Some(t) = p.trim().strip_prefix("timeout=") {
                    if let Ok(t) = t.trim().parse::<u64>() {
                        timeout = Duration::from_secs(t.clamp(5, 3600));
                    }
                }
            }
        }
        let server_rtcp = r.header("Transport").and_then(|t| {
            let sp = t
                .split(';')
                .find_map(|p| p.trim().strip_prefix("server_port="))?;
            let rtcp = match sp.split_once('-') {
                Some((_, b)) => b.trim().parse::<u16>().ok()?,
                None => sp.trim().parse::<u16>().ok()?.checked_add(1)?,
            };
            let src = t
                .split(';')
                .find_map(|p| p.trim().strip_prefix("source="))
                .and_then(|s| s.trim().parse::<IpAddr>().ok());
            Some(SocketAddr::new(src.or(server_ip)?, rtcp))
        });
        // The channels the server chose (it may not take ours).
        let channel = tcp.then(|| {
            r.header("Transport")
                .and_then(|t| {
                    t.split(';')
                        .find_map(|p| p.trim().strip_prefix("interleaved="))
                        .and_then(|c| c.split('-').next())
                        .and_then(|c| c.trim().parse::<u8>().ok())
                })
                .unwrap_or(channel)
        });
        media.push(RtspMedia {
            video,
            pt: m.pt,
            rtpmap: m.rtpmap,
            fmtp: m.fmtp,
            udp,
            server_rtcp: if tcp { None } else { server_rtcp },
            channel,
        });
    }
    let session = session.ok_or("SETUP gave no session")?;
    let r = conn.request(
        "PLAY",
        &base,
        &[
            ("Session", session.clone()),
            ("Range", "npt=0.000-".to_owned()),
        ],
    )?;
    if r.code != 200 {
        return Err(format!("PLAY answered {}", r.code));
    }
    Ok(RtspSession {
        conn,
        session,
        timeout,
        media,
        control: base,
        tcp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = RtspUrl::parse("rtsp://bob:s3cr:et@cam.local:8554/live/main?x=1").unwrap();
        assert_eq!(u.url, "rtsp://cam.local:8554/live/main?x=1");
        assert_eq!((u.host.as_str(), u.port), ("cam.local", 8554));
        assert_eq!(
            (u.user.as_deref(), u.pass.as_deref()),
            (Some("bob"), Some("s3cr:et"))
        );
        let u = RtspUrl::parse("rtsp://10.0.0.5/stream").unwrap();
        assert_eq!((u.url.as_str(), u.port), ("rtsp://10.0.0.5/stream", 554));
        assert!(RtspUrl::parse("http://x/").is_err());
        assert!(RtspUrl::parse("rtsp://:99/").is_err());
        assert!(RtspUrl::parse("rtsp://h:port/").is_err());
    }

    #[test]
    fn sdp_and_controls() {
        let sdp = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=control:stream=0\r\n\
                   m=audio 0 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\n\
                   a=control:rtsp://h/x/stream=1\r\n";
        let v = sdp_media(sdp, "video").unwrap();
        assert_eq!((v.pt, v.control.as_str()), (96, "stream=0"));
        assert_eq!(v.rtpmap.as_deref(), Some("VP8/90000"));
        let a = sdp_media(sdp, "audio").unwrap();
        assert_eq!(a.fmtp.as_deref(), Some("useinbandfec=1"));
        assert_eq!(
            control_url("rtsp://h/x/", &v.control),
            "rtsp://h/x/stream=0"
        );
        assert_eq!(control_url("rtsp://h/x", &a.control), "rtsp://h/x/stream=1");
        assert!(sdp_media(sdp, "application").is_none());
    }

    #[test]
    fn responses_and_challenges() {
        let raw = b"$\x00\x00\x02ab\
RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\nWWW-Authenticate: Digest realm=\"cam\", nonce=\"abc,def\", qop=\"auth\"\r\nContent-Length: 3\r\n\r\nxyz";
        let r = read_response(&mut &raw[..]).unwrap();
        assert_eq!(r.code, 401);
        assert_eq!(r.body, "xyz");
        let c = r.header("www-authenticate").unwrap();
        assert_eq!(param(c, "realm").as_deref(), Some("cam"));
        assert_eq!(param(c, "nonce").as_deref(), Some("abc,def"));
        assert_eq!(param(c, "qop").as_deref(), Some("auth"));
        assert!(read_response(&mut &b"HTTP/1.1 200 OK\r\n\r\n"[..]).is_err());
        assert!(read_response(&mut &b"RTSP/1.0 200"[..]).is_err());
        assert_eq!(base64("user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64("ab"), "YWI=");
        // RFC 2617's example digest.
        let ha1 = md5_hex("Mufasa:testrealm@host.com:Circle Of Life");
        assert_eq!(ha1, "939e7578ed9e3c518a452acee763bce9");
    }
}
