//! `post`: every message of a room that has an HTTP backend is also POSTed to it as JSON, from
//! one task of the plugins' runtime, so a slow or dead backend never holds a room lock or the
//! media worker that carried the message. The queue is bounded; what does not fit is dropped
//! and counted.

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jano_plugin::CoreServices;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages waiting for the backend, across rooms.
const QUEUE: usize = 4096;
/// A backend that does not answer within this long is given up on for that message.
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Poster {
    tx: mpsc::Sender<(String, Arc<[u8]>)>,
    pub dropped: Arc<AtomicU64>,
    pub failed: Arc<AtomicU64>,
}

impl Poster {
    pub fn start(services: &dyn CoreServices) -> Poster {
        let (tx, mut rx) = mpsc::channel::<(String, Arc<[u8]>)>(QUEUE);
        let failed = Arc::new(AtomicU64::new(0));
        let fails = failed.clone();
        services.spawn(Box::pin(async move {
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            while let Some((url, body)) = rx.recv().await {
                let req = hyper::Request::post(url.as_str())
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/json")
                    .header("charsets", "utf-8")
                    .body(Full::new(Bytes::copy_from_slice(&body)));
                let Ok(req) = req else {
                    tracing::warn!("textroom: invalid backend URL {url}");
                    fails.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                match tokio::time::timeout(TIMEOUT, client.request(req)).await {
                    Ok(Ok(resp)) if resp.status().is_success() => {}
                    Ok(Ok(resp)) => {
                        tracing::warn!("textroom: backend {url} answered {}", resp.status());
                        fails.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(e)) => {
                        tracing::warn!("textroom: couldn't post to {url}: {e}");
                        fails.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        tracing::warn!("textroom: backend {url} timed out");
                        fails.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
        Poster {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            failed,
        }
    }

    /// Queues one message for the backend (never waits).
    pub fn post(&self, url: &str, body: Arc<[u8]>) {
        if self.tx.try_send((url.to_owned(), body)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
