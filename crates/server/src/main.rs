//! `jano`: reads a Janus configuration folder (or uses the built-in default), starts the gateway
//! core, the plugins and the transports, and shuts down cleanly on SIGINT/SIGTERM.

use clap::Parser;
use jano::{setup, Args};
use std::process::ExitCode;

// Every request allocates a few small JSON maps and buffers; mimalloc's per-thread free lists
// cost less per request than glibc's malloc (measured with jano-load, see BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("jano")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("jano: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(setup::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jano: {e}");
            ExitCode::FAILURE
        }
    }
}
