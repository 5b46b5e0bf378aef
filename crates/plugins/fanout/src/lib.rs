//! `jano.plugin.fanout`: the smallest forwarding plugin written on the fan-out contract. A
//! handle `publish`es (its offer is answered; what it sends is forwarded), others `subscribe`
//! to a publisher's handle id (their offer is answered; they receive its audio on their first
//! audio m-line and its video on their first video m-line), and may `switch` to another
//! publisher or `pause`/`resume`. Subscribers' keyframe requests reach the publisher at most
//! every `fir_freq` seconds; their REMB estimates are kept and shown in `handle_info`.
//!
//! It is jano's own (Janus has no such plugin), so it is loaded only when its configuration
//! file `jano.plugin.fanout.jcfg` says `general: { enabled = true }`: the media tests and the
//! fan-out benchmark use it; a Janus drop-in deployment never sees it.

mod error;
mod session;

use error::FanoutError;
use jano_plugin::{
    session_as, CoreServices, HandleRef, Jcfg, Jsep, JsepType, LocalJsep, Map, MediaPrefs, Plugin,
    PluginInfo, PluginResult, SessionRef, Value,
};
use serde_json::json;
use session::{FanHandle, Role, Source};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub const PACKAGE: &str = "jano.plugin.fanout";

const INFO: PluginInfo = PluginInfo {
    package: PACKAGE,
    name: "jano fan-out plugin",
    author: "jano",
    description:
        "Forwards a publisher to its subscribers (tests and benchmarks of the fan-out path).",
    version: 1,
    version_string: "0.0.1",
};

/// State shared by the plugin and its handles.
pub(crate) struct Shared {
    pub services: Arc<dyn CoreServices>,
    /// Publishers by handle id.
    pub sources: Mutex<HashMap<u64, Arc<Source>>>,
    pub fir_freq: Duration,
}

impl Shared {
    pub fn sources(&self) -> MutexGuard<'_, HashMap<u64, Arc<Source>>> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct FanoutPlugin {
    shared: Arc<Shared>,
}

impl FanoutPlugin {
    pub fn new(services: Arc<dyn CoreServices>, fir_freq: Duration) -> Self {
        FanoutPlugin {
            shared: Arc::new(Shared {
                services,
                sources: Mutex::new(HashMap::new()),
                fir_freq,
            }),
        }
    }

    /// Whether a configuration turns the plugin on (it is off without one).
    pub fn enabled(config: Option<&Jcfg>) -> bool {
        config
            .and_then(|c| c.root.group("general"))
            .and_then(|g| g.get_bool("enabled"))
            .unwrap_or(false)
    }

    /// The [`jano_plugin::PluginFactory`]: `fir_freq` (seconds, default 3) from `general`.
    pub fn factory(
        config: Option<&Jcfg>,
        services: Arc<dyn CoreServices>,
    ) -> Result<Arc<dyn Plugin>, String> {
        let fir = config
            .and_then(|c| c.root.group("general"))
            .and_then(|g| g.get_int("fir_freq"))
            .unwrap_or(3)
            .clamp(0, 3600);
        Ok(Arc::new(FanoutPlugin::new(
            services,
            Duration::from_secs(fir as u64),
        )))
    }

    fn request(
        &self,
        me: &FanHandle,
        body: &Map<String, Value>,
    ) -> Result<Map<String, Value>, FanoutError> {
        let feed = || match body.get("feed") {
            Some(v) => v.as_u64().ok_or(FanoutError::InvalidFeed),
            None => Err(FanoutError::MissingFeed),
        };
        let request = body
            .get("request")
            .and_then(Value::as_str)
            .ok_or(FanoutError::MissingRequest)?;
        let mut out = Map::new();
        match request {
            "publish" => {
                me.publish()?;
                out.insert("id".into(), json!(me.id()));
            }
            "subscribe" => me.subscribe(feed()?)?,
            "switch" => me.switch(feed()?)?,
            "pause" => me.set_paused(true)?,
            "resume" => me.set_paused(false)?,
            other => return Err(FanoutError::UnknownRequest(other.to_owned())),
        }
        out.insert("fanout".into(), json!("event"));
        out.insert("result".into(), json!("ok"));
        Ok(out)
    }
}

impl Plugin for FanoutPlugin {
    fn info(&self) -> &PluginInfo {
        &INFO
    }

    fn create_session(&self, handle: &HandleRef) -> Result<SessionRef, i32> {
        Ok(Arc::new(FanHandle::new(
            self.shared.clone(),
            handle.clone(),
        )))
    }

    fn handle_message(
        &self,
        handle: &HandleRef,
        session: &SessionRef,
        transaction: &str,
        body: Map<String, Value>,
        jsep: Option<Jsep>,
    ) -> PluginResult {
        let Some(me) = session_as::<FanHandle>(session) else {
            return PluginResult::Error("no fan-out state for this handle".into());
        };
        let (data, answer) = match self.request(me, &body) {
            Ok(data) => {
                let answer = jsep
                    .filter(|j| j.kind == JsepType::Offer)
                    .map(|_| LocalJsep::Answer(MediaPrefs::default()));
                (data, answer)
            }
            Err(e) => (e.to_event(), None),
        };
        let _ = self
            .shared
            .services
            .push_event(handle, Some(transaction.to_owned()), data, answer);
        PluginResult::OkWait(None)
    }

    fn destroy_session(&self, _handle: &HandleRef, session: &SessionRef) -> Result<(), i32> {
        let me = session_as::<FanHandle>(session).ok_or(-1)?;
        me.leave();
        Ok(())
    }

    fn query_session(&self, _handle: &HandleRef, session: &SessionRef) -> Value {
        match session_as::<FanHandle>(session) {
            Some(me) => me.describe(),
            None => json!({}),
        }
    }
}

pub(crate) fn role_name(r: &Role) -> &'static str {
    match r {
        Role::None => "none",
        Role::Publisher(_) => "publisher",
        Role::Subscriber { .. } => "subscriber",
    }
}
