//! `jano-load`: drives any Janus-API server (jano or Janus) over HTTP or WebSockets and measures
//! throughput, latency and the server's CPU and memory. Loopback targets only.

mod cycles;
mod http;
mod idle;
mod janus;
mod procfs;
mod report;
mod stats;
mod target;
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
    /// Open many idle sessions (one echotest handle each) and measure the server's RSS.
    Idle(IdleArgs),
    /// Markdown tables from a file of `--json` reports (one per line); label `janus` = baseline.
    Report {
        /// File with one JSON report per line.
        file: std::path::PathBuf,
    },
}

#[derive(Args)]
struct Common {
    /// Transport to use.
    #[arg(long, value_enum)]
    transport: Transport,
    /// e.g. http://127.0.0.1:8088/janus or ws://127.0.0.1:8188 (loopback only).
    #[arg(long)]
    url: String,
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

fn secs(name: &str, v: f64) -> Result<Duration, String> {
    if v.is_finite() && (0.0..=86_400.0).contains(&v) {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!("--{name} must be between 0 and 86400 seconds"))
    }
}

fn check_pid(pid: u32) -> Result<(), String> {
    procfs::read_stat(pid)
        .map(|_| ())
        .map_err(|e| format!("--server-pid {pid}: cannot read /proc/{pid}/stat: {e}"))
}

async fn run(cli: Cli) -> Result<bool, String> {
    match cli.cmd {
        Cmd::Cycles(a) => {
            let target = target::validate(&a.common.url, a.common.transport).await?;
            if a.clients == 0 || a.clients > 100_000 {
                return Err("--clients must be between 1 and 100000".into());
            }
            if let Some(pid) = a.server_pid {
                check_pid(pid)?;
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
                timeout,
                label: a.common.label,
            };
            let r = cycles::run(opts).await;
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
            let target = target::validate(&a.common.url, a.common.transport).await?;
            check_pid(a.server_pid)?;
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
