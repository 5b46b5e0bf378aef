//! One client per transport, and how each is set up against a test server.

pub mod http;
pub mod mqtt;
pub mod nanomsg;
pub mod rabbitmq;
pub mod unix;
pub mod ws;

use crate::server::{Options, TestServer};
use crate::Client;
use std::future::Future;

/// A transport as the suite sees it: what the server needs to serve it, and how to connect.
pub trait Setup: Send + Sync {
    type C: Client;
    /// Adds what the server needs for this transport (e.g. a broker transport's config).
    fn configure(&self, _opts: &mut Options) {}
    /// A new client connection to `srv` (Admin API requests go over the same client).
    fn connect(&self, srv: &TestServer) -> impl Future<Output = Self::C> + Send;
}
