//! Reader for Janus's own configuration files, so jano can run from an existing
//! `/etc/janus` unchanged.
//!
//! Two layers:
//! * [`Jcfg`]: any `.jcfg` file (libconfig-style syntax) or legacy `.cfg` INI file, parsed
//!   into ordered [`Group`]s of [`Value`]s, read with Janus's semantics (every scalar is
//!   text, booleans are true iff `yes`/`true`/`1`);
//! * typed configuration with Janus's defaults: [`JanusConfig`], [`HttpConfig`],
//!   [`WsConfig`], gathered with every other component's raw file in [`ConfigSet`].
//!
//! Parsing never panics; every error names the file, and syntax errors the line and column.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Configuration is user input: the library must report, never panic, on any of it.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod error;
mod ini;
mod janus;
mod jcfg;
mod parser;
mod read;
mod set;
mod transports;
mod value;

pub use error::ConfigError;
pub use janus::{
    disabled_component, parse_port_range, CertificatesConfig, EventsConfig, GeneralConfig,
    JanusConfig, MediaConfig, NatConfig, DEFAULT_DTLS_CIPHERS, SAMPLE_ADMIN_SECRET,
};
pub use jcfg::Jcfg;
pub use set::{ConfigSet, HTTP_PACKAGE, WS_PACKAGE};
pub use transports::{HttpConfig, JsonFormat, WsConfig};
pub use value::{janus_is_true, parse_int_text, Group, Position, Value};
