//! `janus.transport.http`: the Janus API over HTTP, as Janus's REST transport serves it.
//!
//! - `POST <base>`, `<base>/<session>`, `<base>/<session>/<handle>`: requests (ids from the path
//!   are injected into the body; a conflicting id in the body is error 457).
//! - `GET <base>/<session>?maxev=N`: the long poll on the session's event queue (30 s, then a
//!   `keepalive`); `GET <base>/info` and `<base>/ping`.
//! - `OPTIONS`: CORS preflight. Every Janus outcome, errors included, is HTTP 200.
//! - The Admin API on its own listener (`<admin_base>` paths, no long polls).
//!
//! Only translation lives here; every decision is the gateway core's.

mod longpoll;
mod server;

pub use jano_api::json::JsonFormat;
pub use jano_runtime::Listener;
pub use server::{serve, HttpServer, HttpSettings};

/// What `info` says about this transport.
pub const INFO: jano_runtime::TransportInfo = jano_runtime::TransportInfo {
    package: "janus.transport.http",
    name: "JANUS REST (HTTP/HTTPS) transport plugin",
    author: "jano",
    description: "The Janus API over HTTP REST with long polls, on hyper.",
    version: 2,
    version_string: "0.0.2",
};
