//! A [`CoreServices`] that records what a plugin asks of the core, for plugins' tests that
//! drive a plugin through its contract without a gateway or media engine: events pushed,
//! PeerConnections closed, media and data relayed, keyframe requests and REMBs. Blocking work
//! runs at once, on the caller's thread, so a test sees its effect when the call returns.

use crate::{
    CoreServices, DataMessage, HandleRef, LocalJsep, Map, PushError, RtpPacket, SharedData, Value,
};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// One `push_event`.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub handle: u64,
    pub transaction: Option<String>,
    pub data: Map<String, Value>,
    pub jsep: Option<LocalJsep>,
}

#[derive(Default)]
pub struct RecordingServices {
    pub pushed: Mutex<Vec<Pushed>>,
    pub closed: Mutex<Vec<u64>>,
    pub rtp: Mutex<Vec<(u64, RtpPacket)>>,
    /// Data-channel messages relayed: (handle, text or bytes).
    pub data: Mutex<Vec<(u64, Vec<u8>)>>,
    pub pli: Mutex<Vec<(u64, Option<usize>)>>,
    pub remb: Mutex<Vec<(u64, u64)>>,
    /// What `configs_folder` answers.
    pub folder: Option<PathBuf>,
    /// Signed-token mode: checks (token, descriptor) as the core would (a test passes the
    /// core's checker with its secret); `None`: the core is not in signed mode.
    pub signer: Option<Signer>,
}

/// A signed-token check for [`RecordingServices::signer`].
pub type Signer = std::sync::Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RecordingServices {
    pub fn with_folder(folder: Option<PathBuf>) -> RecordingServices {
        RecordingServices {
            folder,
            ..RecordingServices::default()
        }
    }

    /// The events pushed to one handle, in order.
    pub fn pushed_to(&self, handle: u64) -> Vec<Pushed> {
        lock(&self.pushed)
            .iter()
            .filter(|p| p.handle == handle)
            .cloned()
            .collect()
    }

    /// The data-channel messages relayed to one handle, as text.
    pub fn data_to(&self, handle: u64) -> Vec<String> {
        lock(&self.data)
            .iter()
            .filter(|(h, _)| *h == handle)
            .map(|(_, d)| String::from_utf8_lossy(d).into_owned())
            .collect()
    }

    /// The RTP packets relayed to one handle.
    pub fn rtp_to(&self, handle: u64) -> Vec<RtpPacket> {
        lock(&self.rtp)
            .iter()
            .filter(|(h, _)| *h == handle)
            .map(|(_, p)| p.clone())
            .collect()
    }

    pub fn closed(&self) -> Vec<u64> {
        lock(&self.closed).clone()
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        lock(&self.pushed).clear();
        lock(&self.closed).clear();
        lock(&self.rtp).clear();
        lock(&self.data).clear();
        lock(&self.pli).clear();
        lock(&self.remb).clear();
    }
}

impl CoreServices for RecordingServices {
    fn push_event(
        &self,
        handle: &HandleRef,
        transaction: Option<String>,
        message: Map<String, Value>,
        jsep: Option<LocalJsep>,
    ) -> Result<(), PushError> {
        lock(&self.pushed).push(Pushed {
            handle: handle.handle_id,
            transaction,
            data: message,
            jsep,
        });
        Ok(())
    }
    fn end_session(&self, _handle: &HandleRef) {}
    fn close_pc(&self, handle: &HandleRef) {
        lock(&self.closed).push(handle.handle_id);
    }
    fn relay_rtp(&self, handle: &HandleRef, packet: &RtpPacket) {
        lock(&self.rtp).push((handle.handle_id, packet.clone()));
    }
    fn relay_data(&self, handle: &HandleRef, message: &DataMessage<'_>) {
        lock(&self.data).push((handle.handle_id, message.buffer.to_vec()));
    }
    fn relay_shared_data(&self, handle: &HandleRef, message: &SharedData) {
        lock(&self.data).push((handle.handle_id, message.data.to_vec()));
    }
    fn send_pli(&self, handle: &HandleRef, mindex: Option<usize>) {
        lock(&self.pli).push((handle.handle_id, mindex));
    }
    fn send_remb(&self, handle: &HandleRef, bitrate: u64) {
        lock(&self.remb).push((handle.handle_id, bitrate));
    }
    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send + 'static>) {
        work();
    }
    fn configs_folder(&self) -> Option<PathBuf> {
        self.folder.clone()
    }
    fn auth_is_signed(&self) -> bool {
        self.signer.is_some()
    }
    fn signature_contains(&self, token: &str, descriptor: &str) -> bool {
        self.signer.as_ref().is_some_and(|f| f(token, descriptor))
    }
}

/// A handle reference for tests: session 1, handle `id`.
pub fn handle(id: u64) -> HandleRef {
    HandleRef {
        session_id: 1,
        handle_id: id,
        opaque_id: None,
        token: None,
    }
}

/// A JSON object from `json!`, for request bodies.
pub fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
