//! The kernel's share of a fan-out: what it costs one thread to hand the kernel a datagram for
//! each of N UDP sockets on 127.0.0.1 with `sendmmsg` (no encryption, no RTP work), at the
//! packet rates of the media benchmark. No SFU that sends a datagram per receiver can spend
//! less CPU per forwarded packet than this on the same machine, which bounds the CPU ratio a
//! server can reach against another.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct FloorOpts {
    pub dests: usize,
    pub audio_pps: u32,
    pub video_pps: u32,
    pub audio_bytes: usize,
    pub video_bytes: usize,
    pub duration: Duration,
    pub sender_cpu: Option<usize>,
    pub receiver_cpu: Option<usize>,
}

/// Pins the calling thread to one CPU (best effort: reported, not fatal).
fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("jano-load: could not pin a thread to CPU {cpu}");
        }
    }
}

/// CPU time of the calling thread (user + system).
fn thread_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut r) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(r.ru_utime) + tv(r.ru_stime)
}

pub fn run(o: &FloorOpts) -> Result<serde_json::Value, String> {
    let bind = || UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"));
    let receivers: Vec<UdpSocket> = (0..o.dests).map(|_| bind()).collect::<Result<_, _>>()?;
    let addrs: Vec<libc::sockaddr_in> = receivers
        .iter()
        .map(|s| {
            let port = s.local_addr().map(|a| a.port()).unwrap_or(0);
            // SAFETY: sockaddr_in is plain data; every field is set below.
            let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            a.sin_family = libc::AF_INET as libc::sa_family_t;
            a.sin_port = port.to_be();
            a.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            a
        })
        .collect();
    for r in &receivers {
        r.set_nonblocking(true).map_err(|e| e.to_string())?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (stop_rx, receiver_cpu) = (stop.clone(), o.receiver_cpu);
    // The receiving side drains the sockets so that none overflows (its cost is not counted).
    let drain = std::thread::spawn(move || {
        if let Some(c) = receiver_cpu {
            pin(c);
        }
        let mut buf = [0u8; 2048];
        let mut got = 0u64;
        while !stop_rx.load(Ordering::Relaxed) {
            let mut any = false;
            for r in &receivers {
                while r.recv(&mut buf).is_ok() {
                    got += 1;
                    any = true;
                }
            }
            if !any {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        got
    });
    if let Some(c) = o.sender_cpu {
        pin(c);
    }
    let sock = bind()?;
    let fd = sock.as_raw_fd();
    let audio = vec![0x11u8; o.audio_bytes];
    let video = vec![0x22u8; o.video_bytes];
    // One "incoming packet" per tick, audio and video interleaved by their rates; each goes
    // to every destination in batches of up to 64 (as the engine's sendmmsg).
    let total_pps = o.audio_pps + o.video_pps;
    let tick = Duration::from_secs(1) / total_pps.max(1);
    let start = Instant::now();
    let cpu0 = thread_cpu();
    let (mut sent, mut failed, mut n) = (0u64, 0u64, 0u64);
    let mut next = start;
    while start.elapsed() < o.duration {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
            continue;
        }
        next += tick;
        n += 1;
        let is_audio = o.audio_pps > 0
            && (o.video_pps == 0
                || (n * u64::from(o.audio_pps)) % u64::from(total_pps) < u64::from(o.audio_pps));
        let payload = if is_audio { &audio } else { &video };
        for chunk in addrs.chunks(64) {
            let mut iov: Vec<libc::iovec> = chunk
                .iter()
                .map(|_| libc::iovec {
                    iov_base: payload.as_ptr() as *mut libc::c_void,
                    iov_len: payload.len(),
                })
                .collect();
            let mut hdrs: Vec<libc::mmsghdr> = chunk
                .iter()
                .zip(iov.iter_mut())
                .map(|(a, v)| {
                    // SAFETY: mmsghdr is plain data; the pointers set below outlive the call.
                    let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    h.msg_hdr.msg_name = a as *const libc::sockaddr_in as *mut libc::c_void;
                    h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
                    h.msg_hdr.msg_iov = v;
                    h.msg_hdr.msg_iovlen = 1;
                    h
                })
                .collect();
            // SAFETY: hdrs, iov, addrs and payload are alive for the duration of the call.
            let r = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), hdrs.len() as u32, 0) };
            if r < 0 {
                failed += chunk.len() as u64;
            } else {
                sent += r as u64;
                failed += chunk.len() as u64 - r as u64;
            }
        }
    }
    let cpu = thread_cpu().saturating_sub(cpu0);
    let wall = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let received = drain.join().unwrap_or(0);
    let per_1000 = cpu.as_secs_f64() / (sent.max(1) as f64) * 1000.0;
    Ok(serde_json::json!({
        "mode": "udp-floor",
        "dests": o.dests,
        "audio_pps": o.audio_pps,
        "video_pps": o.video_pps,
        "seconds": wall.as_secs_f64(),
        "datagrams_sent": sent,
        "datagrams_failed": failed,
        "datagrams_received": received,
        "sender_cpu_s": cpu.as_secs_f64(),
        "cpu_s_per_1000": per_1000,
        "us_per_datagram": per_1000 * 1000.0,
    }))
}
