//! The script interpreter shared by the fuzz targets and by
//! `crates/core/tests/fuzz_corpus.rs` (which includes `script.rs` by path).

pub mod script;

/// The media-path harnesses (`media_*` targets); also included by
/// `crates/media/tests/fuzz_corpus.rs`.
pub mod media;

/// `jano-media`'s networking module, compiled here for its private STUN ufrag reader (the
/// single-port demultiplexer's first look at every datagram).
#[path = "../../crates/media/src/net.rs"]
#[allow(dead_code)]
mod media_net;

/// `jano_media::net::stun_local_ufrag`.
pub fn stun_local_ufrag(data: &[u8]) -> Option<&str> {
    media_net::stun_local_ufrag(data)
}
