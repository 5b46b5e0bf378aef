//! RTP header extensions str0m does not know, carried through its user-extension hook.

use jano_plugin::dd::DD_URI;
use std::sync::Arc;
use str0m::rtp::{Extension, ExtensionSerializer, ExtensionValues};

/// The extension id we offer the AV1 dependency descriptor with (a peer's offer may remap it).
pub const DD_ID: u8 = 12;

/// A dependency descriptor's bytes, as received or to send (in `ExtensionValues::user_values`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdValue(pub Arc<[u8]>);

/// Reads and writes the AV1 dependency descriptor as opaque bytes: the plugin side parses it
/// (`jano_plugin::dd`), and relays it unchanged.
#[derive(Debug)]
pub struct DdSerializer;

impl ExtensionSerializer for DdSerializer {
    fn write_to(&self, buf: &mut [u8], ev: &ExtensionValues) -> usize {
        let Some(DdValue(v)) = ev.user_values.get::<DdValue>() else {
            return 0;
        };
        match buf.get_mut(..v.len()) {
            Some(out) => {
                out.copy_from_slice(v);
                v.len()
            }
            None => 0,
        }
    }

    fn parse_value(&self, buf: &[u8], ev: &mut ExtensionValues) -> bool {
        // The mandatory fields take three bytes.
        if buf.len() < 3 {
            return false;
        }
        ev.user_values.set(DdValue(buf.into()));
        true
    }

    fn is_video(&self) -> bool {
        true
    }

    fn is_audio(&self) -> bool {
        false
    }

    fn requires_two_byte_form(&self, ev: &ExtensionValues) -> bool {
        // A descriptor with its template structure is longer than the one-byte form holds.
        ev.user_values
            .get::<DdValue>()
            .is_some_and(|DdValue(v)| v.len() > 16)
    }
}

/// The dependency descriptor as a str0m extension (for `RtcConfig::set_extension`).
pub fn dd_extension() -> Extension {
    Extension::with_serializer(DD_URI, DdSerializer)
}
