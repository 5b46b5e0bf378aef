//! SubRip subtitles for text data channel recordings: each message is shown from its time
//! (relative to the recording's creation) until just before the next one, the last for 5 s,
//! as janus-pp-rec does.

use std::io::Write;
use std::path::Path;

use jano_mjr::Frame;

use super::{create, io_err};
use crate::error::PpError;

fn srt_time(us: i64) -> String {
    let ms = us.max(0) / 1000;
    format!(
        "{:02}:{:02}:{:02},{:03}",
        ms / 3_600_000,
        (ms / 60_000) % 60,
        (ms / 1000) % 60,
        ms % 1000
    )
}

/// Renders the messages (`(µs since creation, text)`) as SRT.
pub fn render(messages: &[(i64, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (t, msg)) in messages.iter().enumerate() {
        let to = messages
            .get(i + 1)
            .map_or(t + 5_000_000, |(next, _)| next - 1000);
        out.extend_from_slice(
            format!("{}\n{} --> {}\n", i + 1, srt_time(*t), srt_time(to)).as_bytes(),
        );
        out.extend_from_slice(msg);
        out.extend_from_slice(b"\n\n");
    }
    out
}

/// Writes the data frames of a text recording as SRT. Returns the number of messages.
pub fn write(path: &Path, frames: &[Frame], created_us: i64) -> Result<usize, PpError> {
    let messages: Vec<(i64, &[u8])> = frames
        .iter()
        .filter_map(|f| f.data_message())
        .map(|(t, m)| (t - created_us, m))
        .collect();
    if messages.is_empty() {
        return Err(PpError::NothingToWrite(
            "no data channel messages in the recording".into(),
        ));
    }
    let mut w = create(path)?;
    w.write_all(&render(&messages))
        .and_then(|()| w.flush())
        .map_err(io_err(path))?;
    Ok(messages.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srt_cues() {
        let s = render(&[(1_500_000, b"hi"), (3_723_004_000, b"there")]);
        assert_eq!(
            String::from_utf8(s).unwrap(),
            "1\n00:00:01,500 --> 01:02:03,003\nhi\n\n2\n01:02:03,004 --> 01:02:08,004\nthere\n\n"
        );
    }
}
