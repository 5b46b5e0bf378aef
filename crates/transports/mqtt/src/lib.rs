//! `janus.transport.mqtt` (being written).

use jano_config::Jcfg;
use jano_runtime::Runtime;

/// What `info` says about this transport.
pub const INFO: jano_runtime::TransportInfo = jano_runtime::TransportInfo {
    package: "janus.transport.mqtt",
    name: "JANUS MQTT transport plugin",
    author: "jano",
    description: "The Janus API over Mqtt.",
    version: 1,
    version_string: "0.0.1",
};

/// Settings from `janus.transport.mqtt.jcfg`, with Janus's keys and defaults.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub enabled: bool,
}

impl Settings {
    pub fn from_jcfg(j: &Jcfg) -> Result<Settings, String> {
        Ok(Settings {
            enabled: j.get_bool("general", "enabled").unwrap_or(false),
        })
    }
}

/// A running transport.
pub struct Server;

impl Server {
    /// Stops serving (closes connections, stops reconnecting).
    pub fn stop(&self) {}
}

/// Starts the transport.
pub async fn serve(_rt: &Runtime, _settings: Settings) -> Result<Server, String> {
    Err("the mqtt transport is not implemented yet".into())
}
