//! Command line, modelled on janus-pp-rec's: `jano-pp [options] source.mjr [destination]`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Parser;

use crate::convert::{convert, load, Options};
use crate::error::PpError;
use crate::out::Format;
use crate::report::{header_json, summary};
use crate::rtp::OrderOptions;

/// Post-processes a Janus `.mjr` recording into a playable file: packets are reordered,
/// duplicates dropped, frames rebuilt from RTP and muxed. No transcoding is done. The output
/// format follows the destination's extension (or --format): opus/ogg (Opus), wav (PCMU, PCMA,
/// L16), webm/mkv (VP8, VP9, AV1, Opus), mp4 (H.264, AV1), srt (text data).
#[derive(Debug, Parser)]
#[command(name = "jano-pp", version)]
pub struct Args {
    /// Only print the JSON info header.
    #[arg(short = 'j', long = "json")]
    pub json: bool,
    /// Only print the JSON info header (same as --json).
    #[arg(short = 'H', long = "header")]
    pub header: bool,
    /// Only parse and reorder the packets, and print a summary.
    #[arg(short = 'p', long = "parse")]
    pub parse: bool,
    /// Only print the target file extensions each codec converts to.
    #[arg(short = 'F', long = "file-extensions")]
    pub file_extensions: bool,
    /// Output format, overriding the destination's extension
    /// (opus, ogg, wav, webm, mkv, mka, mp4, srt).
    #[arg(short = 'f', long = "format", value_name = "FORMAT")]
    pub format: Option<String>,
    /// Ignore this many packets at the start of the recording.
    #[arg(
        short = 'i',
        long = "ignore-first",
        value_name = "COUNT",
        default_value_t = 0
    )]
    pub ignore_first: usize,
    /// Ignore RTP packets whose payload type is not this one.
    #[arg(short = 'P', long = "payload-type", value_name = "PT")]
    pub payload_type: Option<u8>,
    /// An Opus audio recording to mux with the video one (webm, mkv, mp4), kept in sync
    /// through the recordings' start times.
    #[arg(long = "audio", value_name = "AUDIO.mjr")]
    pub audio: Option<PathBuf>,
    /// Process a truncated or damaged recording up to the damage instead of failing.
    #[arg(long = "salvage")]
    pub salvage: bool,
    /// The recording.
    #[arg(value_name = "SOURCE.mjr", required_unless_present = "file_extensions")]
    pub source: Option<PathBuf>,
    /// The file to write.
    #[arg(value_name = "DESTINATION")]
    pub destination: Option<PathBuf>,
}

fn print(out: &mut dyn Write, text: &str) -> Result<(), PpError> {
    out.write_all(text.as_bytes())
        .map_err(|source| PpError::Io {
            path: PathBuf::from("<stdout>"),
            source,
        })
}

fn extensions_table() -> String {
    let mut s = String::new();
    for (name, codec) in [
        ("Opus", "opus"),
        ("Multiopus", "multiopus"),
        ("G.711", "pcmu"),
        ("L16", "l16"),
        ("VP8", "vp8"),
        ("VP9", "vp9"),
        ("H.264", "h264"),
        ("AV1", "av1"),
        ("Text", "text"),
    ] {
        s.push_str(&format!(
            "{name}: {}\n",
            Format::extensions_for(codec).join(", ")
        ));
    }
    s
}

/// The output format: `--format`, else the destination's extension.
fn output_format(args: &Args, dst: &Path) -> Result<(Format, String), PpError> {
    let name = match &args.format {
        Some(f) => f.clone(),
        None => dst
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_string)
            .ok_or_else(|| PpError::UnknownFormat(dst.display().to_string()))?,
    };
    let format = Format::from_name(&name).ok_or_else(|| PpError::UnknownFormat(name.clone()))?;
    Ok((format, name.to_ascii_lowercase()))
}

/// Runs the command: reports go to `out`, progress and warnings to `log`.
pub fn run(args: &Args, out: &mut dyn Write, log: &mut dyn Write) -> Result<(), PpError> {
    if args.file_extensions {
        return print(out, &extensions_table());
    }
    let Some(src) = args.source.as_deref() else {
        return Err(PpError::MissingDestination);
    };
    let order = OrderOptions {
        ignore_first: args.ignore_first,
        payload_type: args.payload_type,
    };
    if args.json || args.header {
        let rec = load(src, args.salvage, log)?;
        return print(out, &format!("{}\n", header_json(&rec)));
    }
    if args.parse {
        let rec = load(src, args.salvage, log)?;
        return print(out, &summary(&rec, order));
    }
    let Some(dst) = args.destination.as_deref() else {
        return Err(PpError::MissingDestination);
    };
    let (format, name) = output_format(args, dst)?;
    let opts = Options {
        order,
        salvage: args.salvage,
    };
    convert(src, dst, format, &name, args.audio.as_deref(), opts, log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_like_janus_pp_rec() {
        let a = Args::try_parse_from(["jano-pp", "-p", "-i", "3", "-P", "96", "in.mjr"]).unwrap();
        assert!(a.parse);
        assert_eq!((a.ignore_first, a.payload_type), (3, Some(96)));
        let a = Args::try_parse_from(["jano-pp", "--audio", "a.mjr", "v.mjr", "out.webm"]).unwrap();
        assert_eq!(a.destination.as_deref(), Some(Path::new("out.webm")));
        let (f, n) = output_format(&a, Path::new("out.webm")).unwrap();
        assert_eq!((f, n.as_str()), (Format::Webm, "webm"));
        assert!(Args::try_parse_from(["jano-pp"]).is_err());
        assert!(Args::try_parse_from(["jano-pp", "-F"]).is_ok());
        let a = Args::try_parse_from(["jano-pp", "-f", "OGG", "in.mjr", "out.bin"]).unwrap();
        assert_eq!(
            output_format(&a, Path::new("out.bin")).unwrap().0,
            Format::Ogg
        );
        let a = Args::try_parse_from(["jano-pp", "in.mjr", "out.avi"]).unwrap();
        assert!(matches!(
            output_format(&a, Path::new("out.avi")),
            Err(PpError::UnknownFormat(_))
        ));
    }

    #[test]
    fn missing_destination_and_extensions_table() {
        let a = Args::try_parse_from(["jano-pp", "in.mjr"]).unwrap();
        let (mut o, mut l) = (Vec::new(), Vec::new());
        assert!(matches!(
            run(&a, &mut o, &mut l),
            Err(PpError::MissingDestination)
        ));
        let a = Args::try_parse_from(["jano-pp", "-F"]).unwrap();
        run(&a, &mut o, &mut l).unwrap();
        let t = String::from_utf8(o).unwrap();
        assert!(
            t.contains("VP8: webm, mkv") && t.contains("H.264: mp4"),
            "{t}"
        );
    }
}
