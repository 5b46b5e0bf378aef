//! `jano-pp [options] <source.mjr> [destination]`: see `jano-pp --help`.

use clap::Parser;

fn main() {
    let args = jano_pp::cli::Args::parse();
    let (mut out, mut log) = (std::io::stdout().lock(), std::io::stderr().lock());
    if let Err(e) = jano_pp::cli::run(&args, &mut out, &mut log) {
        eprintln!("jano-pp: error: {e}");
        std::process::exit(1);
    }
}
