//! `jano-load`: drives any Janus-API server (jano or Janus) over HTTP, WebSockets, RabbitMQ,
//! MQTT, Nanomsg or Unix sockets and measures throughput, latency and the server's CPU and
//! memory. Loopback (and local socket) targets only.

mod amqp;
mod conn;
mod cycles;
mod floor;
mod http;
mod idle;
mod janus;
mod media;
mod media_report;
mod mqtt;
mod mux;
mod nano;
mod payload;
mod peer;
mod procfs;
mod report;
mod signal;
mod stats;
mod target;
mod unix;
mod ws;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use target::Transport;

#[derive(Parser)]
#[command(
    name = "jano-load",
    version,
    about = "Load tool for Janus-API servers (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// N clients loop: create → attach echotest → message (ack + event) → detach → destroy.
    Cycles(CyclesArgs),
    /// Open many idle sessions (one echotest handle each) and measure the server's RSS (HTTP, WS).
    Idle(IdleArgs),
    /// Send `ping` until the server answers `pong` (readiness check for scripts).
    Ping(PingArgs),
    /// N WebRTC peers on the EchoTest (over WS) sending synthetic Opus + VP8 RTP: echoed
    /// packets, loss, server CPU per 1,000 echoed, offer→webrtcup; `--find-max` steps N up.
    /// `--fanout` / `--videoroom`: 1 publisher → subscribers (forwarded packets instead).
    Media(MediaArgs),
    /// The kernel's floor under a fan-out: one thread's CPU per datagram sent with sendmmsg to
    /// N sockets on 127.0.0.1 at the media benchmark's packet rates (no RTP or SRTP work).
    UdpFloor(FloorArgs),
    /// Markdown tables from a file of `--json` reports (one per line); label `janus` = baseline.
    Report {
        /// File with one JSON report per line.
        file: std::path::PathBuf,
    },
}

#[derive(Args)]
struct FloorArgs {
    /// Destinations (receiving sockets) every packet goes to.
    #[arg(long, default_value_t = 99)]
    dests: usize,
    #[arg(long, default_value_t = 50)]
    audio_pps: u32,
    #[arg(long, default_value_t = 100)]
    video_pps: u32,
    #[arg(long, default_value_t = 100)]
    audio_bytes: usize,
    #[arg(long, default_value_t = 1000)]
    video_bytes: usize,
    /// Seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Pin the sending thread to this CPU.
    #[arg(long)]
    sender_cpu: Option<usize>,
    /// Pin the draining thread to this CPU.
    #[arg(long)]
    receiver_cpu: Option<usize>,
}

#[derive(Args)]
struct Common {
    /// Transport to use.
    #[arg(long, value_enum)]
    transport: Transport,
    /// http://127.0.0.1:8088/janus, ws://127.0.0.1:8188, amqp://guest:guest@127.0.0.1:5672/%2f,
    /// mqtt://127.0.0.1:1883, ipc:///tmp/janus.ipc (or tcp://127.0.0.1:port) for nanomsg, or the
    /// socket's path for unix-seqpacket / unix-dgram. Loopback hosts only.
    #[arg(long)]
    url: String,
    /// RabbitMQ: the queue the server consumes (its `to_janus`). MQTT: the topic it subscribes
    /// to (its `subscribe_topic`).
    #[arg(long)]
    to_janus: Option<String>,
    /// RabbitMQ: the queue the server's answers go to (its `from_janus`). MQTT: the topic it
    /// publishes on (its `publish_topic`).
    #[arg(long)]
    from_janus: Option<String>,
    /// MQTT: QoS of our publishes and of our subscription (Janus's default is 1).
    #[arg(long, default_value_t = 1)]
    mqtt_qos: u8,
    /// RabbitMQ: delete the `from_janus` queue when done (the server publishes to the default
    /// exchange, so the next client just declares it again).
    #[arg(long)]
    amqp_delete_reply_queue: bool,
    /// Timeout of every single request, seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// A label copied into the report (e.g. the server's name).
    #[arg(long)]
    label: Option<String>,
    /// Print one JSON object instead of the human table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CyclesArgs {
    #[command(flatten)]
    common: Common,
    /// Concurrent clients.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Measured window, seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up before the measured window, seconds.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Server process to sample in /proc (CPU time, RSS, threads, fds).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Broker process (RabbitMQ, Mosquitto) whose CPU time is reported too.
    #[arg(long)]
    broker_pid: Option<u32>,
}

#[derive(Args)]
struct PingArgs {
    #[command(flatten)]
    common: Common,
    /// Keep trying this long, seconds.
    #[arg(long, default_value_t = 20.0)]
    wait: f64,
}

#[derive(Args)]
struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Sessions to open (each with one echotest handle).
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Server process to sample in /proc.
    #[arg(long)]
    server_pid: u32,
    /// WS: sockets the sessions are spread over. HTTP: concurrent request workers.
    #[arg(long, default_value_t = 100)]
    parallel: usize,
    /// Settle time before each RSS reading, seconds.
    #[arg(long, default_value_t = 3.0)]
    settle: f64,
    /// Keepalive period per session, seconds.
    #[arg(long, default_value_t = 20.0)]
    keepalive: f64,
    /// Upper bound for opening (and, separately, for destroying) the sessions, seconds.
    #[arg(long, default_value_t = 300.0)]
    max_time: f64,
}

#[derive(Args)]
struct MediaArgs {
    /// ws://127.0.0.1:8188 (loopback only; e.g. inside the benchmark's network namespace).
    #[arg(long)]
    url: String,
    /// Local address the peers' UDP sockets bind to (e.g. the namespace's veth address). Only
    /// the server's candidates on this address are used.
    #[arg(long)]
    bind_ip: std::net::IpAddr,
    /// Concurrent peers (one session, one EchoTest handle, one PeerConnection each).
    #[arg(long, default_value_t = 10)]
    peers: usize,
    /// Opus packets per second per peer.
    #[arg(long, default_value_t = 50)]
    audio_pps: u32,
    /// VP8 packets per second per peer.
    #[arg(long, default_value_t = 100)]
    video_pps: u32,
    /// RTP payload bytes of an audio packet.
    #[arg(long, default_value_t = 100)]
    audio_bytes: usize,
    /// RTP payload bytes of a video packet.
    #[arg(long, default_value_t = 1000)]
    video_bytes: usize,
    /// Measured window, seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Sending before the measured window, seconds.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// After sending stops, keep counting late echoes this long, seconds.
    #[arg(long, default_value_t = 1.0)]
    drain: f64,
    /// Server process to sample in /proc (CPU time).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Timeout of every single request, seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Offer sent → `webrtcup` and our DTLS connected, at most this long, seconds.
    #[arg(long, default_value_t = 20.0)]
    connect_timeout: f64,
    /// Keepalive period per session, seconds.
    #[arg(long, default_value_t = 15.0)]
    keepalive: f64,
    /// Peers negotiating at the same time.
    #[arg(long, default_value_t = 10)]
    setup_parallel: usize,
    /// Find the most peers kept under --max-loss: run the --steps one after the other (each
    /// with fresh peers) until loss reaches it or a step has errors.
    #[arg(long)]
    find_max: bool,
    /// Peer counts for --find-max, ascending.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10,20,50,100,200,300,500,750,1000"
    )]
    steps: Vec<usize>,
    /// Fan-out on jano.plugin.fanout instead of EchoTest: peer 0 publishes, the others
    /// subscribe to it ("echoed" then counts forwarded packets; the RTT is one-way latency).
    #[arg(long)]
    fanout: bool,
    /// VideoRoom (`janus.plugin.videoroom`, jano's and Janus's): the first peer of each group
    /// creates a room and publishes in it (`joinandconfigure` + offer), the others join it as
    /// subscribers (the server offers, they answer with `start`). "echoed" then counts packets
    /// forwarded to subscribers; the RTT is one-way latency.
    #[arg(long, conflicts_with = "fanout")]
    videoroom: bool,
    /// AudioBridge (`janus.plugin.audiobridge`, jano's and Janus's): groups of peers
    /// (--room-size) each in its own room, every peer sending real Opus and counting the mix it
    /// gets back; the latency figures are then the mix's arrival jitter.
    #[arg(long, conflicts_with_all = ["fanout", "videoroom"])]
    audiobridge: bool,
    /// --videoroom / --fanout: peers per group (1 publisher + K − 1 subscribers), each group its
    /// own room (e.g. 11: rooms of 1 → 10); default: one group of all the peers (1 → N − 1).
    #[arg(long)]
    room_size: Option<usize>,
    /// --videoroom: id of the first group's room (group g uses ID + g; an existing room is
    /// used as it is); default random.
    #[arg(long)]
    room: Option<u64>,
    /// Loss limit for --find-max, percent.
    #[arg(long, default_value_t = 0.5)]
    max_loss: f64,
    /// Pause between --find-max steps, seconds.
    #[arg(long, default_value_t = 3.0)]
    settle: f64,
    /// A label copied into the report (e.g. the server's name).
    #[arg(long)]
    label: Option<String>,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    json: bool,
}

fn secs(name: &str, v: f64) -> Result<Duration, String> {
    if v.is_finite() && (0.0..=86_400.0).contains(&v) {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!("--{name} must be between 0 and 86400 seconds"))
    }
}

fn check_pid(flag: &str, pid: u32) -> Result<(), String> {
    procfs::read_stat(pid)
        .map(|_| ())
        .map_err(|e| format!("--{flag} {pid}: cannot read /proc/{pid}/stat: {e}"))
}

fn wire(c: &Common) -> Result<conn::WireOpts, String> {
    mqtt::qos(c.mqtt_qos)?;
    Ok(conn::WireOpts {
        to_janus: c.to_janus.clone(),
        from_janus: c.from_janus.clone(),
        mqtt_qos: c.mqtt_qos,
        amqp_delete_reply_queue: c.amqp_delete_reply_queue,
    })
}

async fn run(cli: Cli) -> Result<bool, String> {
    match cli.cmd {
        Cmd::Cycles(a) => {
            let target = target::validate(&a.common.url, a.common.transport).await?;
            if a.clients == 0 || a.clients > 100_000 {
                return Err("--clients must be between 1 and 100000".into());
            }
            if let Some(pid) = a.server_pid {
                check_pid("server-pid", pid)?;
            }
            if let Some(pid) = a.broker_pid {
                check_pid("broker-pid", pid)?;
            }
            let timeout = secs("timeout", a.common.timeout)?;
            if timeout.is_zero() {
                return Err("--timeout must be > 0".into());
            }
            let opts = cycles::CyclesOpts {
                target,
                clients: a.clients,
                duration: secs("duration", a.duration)?,
                warmup: secs("warmup", a.warmup)?,
                server_pid: a.server_pid,
                broker_pid: a.broker_pid,
                timeout,
                wire: wire(&a.common)?,
                label: a.common.label,
            };
            let r = cycles::run(opts).await?;
            if a.common.json {
                println!("{r}");
            } else {
                print!("{}", report::cycles(&r));
            }
            let cycles = r["cycles"].as_u64().unwrap_or(0);
            let errors = r["errors"].as_u64().unwrap_or(0);
            Ok(cycles > 0 && errors == 0)
        }
        Cmd::Idle(a) => {
            if !matches!(a.common.transport, Transport::Http | Transport::Ws) {
                return Err("idle supports --transport http and ws only".into());
            }
            let target = target::validate(&a.common.url, a.common.transport).await?;
            check_pid("server-pid", a.server_pid)?;
            if a.sessions == 0 || a.sessions > 1_000_000 {
                return Err("--sessions must be between 1 and 1000000".into());
            }
            let timeout = secs("timeout", a.common.timeout)?;
            let keepalive = secs("keepalive", a.keepalive)?;
            if timeout.is_zero() || keepalive.is_zero() {
                return Err("--timeout and --keepalive must be > 0".into());
            }
            let opts = idle::IdleOpts {
                target,
                sessions: a.sessions,
                server_pid: a.server_pid,
                parallel: a.parallel.max(1),
                settle: secs("settle", a.settle)?,
                keepalive,
                timeout,
                max_time: secs("max-time", a.max_time)?,
                label: a.common.label,
            };
            let r = idle::run(opts).await?;
            if a.common.json {
                println!("{r}");
            } else {
                print!("{}", report::idle(&r));
            }
            Ok(r["errors"].as_u64() == Some(0))
        }
        Cmd::Ping(a) => {
            let target = target::validate(&a.common.url, a.common.transport).await?;
            let timeout = secs("timeout", a.common.timeout)?;
            if timeout.is_zero() {
                return Err("--timeout must be > 0".into());
            }
            let wait = secs("wait", a.wait)?;
            match conn::ping(
                &target,
                &wire(&a.common)?,
                wait,
                timeout.min(Duration::from_secs(2)),
            )
            .await
            {
                Ok(after) => {
                    println!(
                        "pong from {} ({}) after {:.2} s",
                        target.url,
                        target.transport.name(),
                        after.as_secs_f64()
                    );
                    Ok(true)
                }
                Err(e) => {
                    eprintln!(
                        "jano-load: {} ({}): {e}",
                        target.url,
                        target.transport.name()
                    );
                    Ok(false)
                }
            }
        }
        Cmd::Media(a) => {
            let target = target::validate(&a.url, Transport::Ws).await?;
            let peers_ok = |n: usize| (1..=20_000).contains(&n);
            if !peers_ok(a.peers) || (a.find_max && !a.steps.iter().all(|&n| peers_ok(n))) {
                return Err("--peers / --steps must be between 1 and 20000".into());
            }
            if a.find_max && (a.steps.is_empty() || !a.steps.is_sorted()) {
                return Err("--steps must be a non-empty ascending list".into());
            }
            if a.audio_pps > 1000 || a.video_pps > 1000 || a.audio_pps + a.video_pps == 0 {
                return Err("--audio-pps / --video-pps must be 0..=1000, not both 0".into());
            }
            if a.audio_bytes > 1200 || a.video_bytes > 1200 {
                return Err("--audio-bytes / --video-bytes must be at most 1200 (one MTU)".into());
            }
            if !(a.max_loss.is_finite() && (0.0..=100.0).contains(&a.max_loss)) {
                return Err("--max-loss must be a percentage".into());
            }
            if let Some(pid) = a.server_pid {
                check_pid("server-pid", pid)?;
            }
            if a.room_size.is_some() && !(a.fanout || a.videoroom || a.audiobridge) {
                return Err("--room-size needs --videoroom, --fanout or --audiobridge".into());
            }
            if a.room_size == Some(0) {
                return Err("--room-size must be at least 1".into());
            }
            if a.room.is_some() && !a.videoroom {
                return Err("--room needs --videoroom".into());
            }
            if a.room.is_some_and(|r| r == 0 || r >= (1 << 52)) {
                return Err("--room must be between 1 and 2^52".into());
            }
            let timeout = secs("timeout", a.timeout)?;
            let connect_timeout = secs("connect-timeout", a.connect_timeout)?;
            let keepalive = secs("keepalive", a.keepalive)?;
            let duration = secs("duration", a.duration)?;
            if timeout.is_zero()
                || connect_timeout.is_zero()
                || keepalive.is_zero()
                || duration.is_zero()
            {
                return Err(
                    "--timeout, --connect-timeout, --keepalive and --duration must be > 0".into(),
                );
            }
            let opts = media::MediaOpts {
                target,
                bind_ip: a.bind_ip,
                peers: a.peers,
                audio_pps: a.audio_pps,
                video_pps: a.video_pps,
                audio_bytes: a.audio_bytes,
                video_bytes: a.video_bytes,
                duration,
                warmup: secs("warmup", a.warmup)?,
                drain: secs("drain", a.drain)?,
                server_pid: a.server_pid,
                timeout,
                connect_timeout,
                keepalive,
                setup_parallel: a.setup_parallel.max(1),
                label: a.label,
                steps: a.find_max.then_some(a.steps),
                max_loss: a.max_loss / 100.0,
                settle: secs("settle", a.settle)?,
                fanout: a.fanout,
                videoroom: a.videoroom,
                audiobridge: a.audiobridge,
                room_size: a.room_size,
                room: a.room,
            };
            let r = media::run(opts).await?;
            if a.json {
                println!("{r}");
            } else {
                print!("{}", media_report::human(&r));
            }
            Ok(r["errors"].as_u64() == Some(0)
                && (r["mode"] == "media-max" || r["echoed"].as_u64().unwrap_or(0) > 0))
        }
        Cmd::UdpFloor(a) => {
            if !(1..=5000).contains(&a.dests) {
                return Err("--dests must be between 1 and 5000".into());
            }
            if a.audio_pps + a.video_pps == 0 || a.audio_pps > 1000 || a.video_pps > 1000 {
                return Err("--audio-pps / --video-pps must be 0..=1000, not both 0".into());
            }
            if a.audio_bytes > 1200 || a.video_bytes > 1200 {
                return Err("--audio-bytes / --video-bytes must be at most 1200".into());
            }
            let r = floor::run(&floor::FloorOpts {
                dests: a.dests,
                audio_pps: a.audio_pps,
                video_pps: a.video_pps,
                audio_bytes: a.audio_bytes,
                video_bytes: a.video_bytes,
                duration: secs("duration", a.duration)?,
                sender_cpu: a.sender_cpu,
                receiver_cpu: a.receiver_cpu,
            })?;
            println!("{r}");
            Ok(r["datagrams_sent"].as_u64().unwrap_or(0) > 0)
        }
        Cmd::Report { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            print!("{}", report::markdown(&text)?);
            Ok(true)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Use the CPUs we are allowed to run on (e.g. 1 under `taskset -c 1`).
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jano-load: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("jano-load: {e}");
            ExitCode::from(2)
        }
    }
}
