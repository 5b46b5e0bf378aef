//! The plugins and transports known to the gateway, as `info` lists them.

use jano_plugin::Plugin;
use std::sync::Arc;

/// Plugins by package name, in registration order.
#[derive(Default, Clone)]
pub struct PluginRegistry {
    plugins: Vec<Arc<dyn Plugin>>,
}

impl PluginRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, plugin: Arc<dyn Plugin>) {
        let pkg = plugin.info().package;
        self.plugins.retain(|p| p.info().package != pkg);
        self.plugins.push(plugin);
    }

    pub fn get(&self, package: &str) -> Option<&Arc<dyn Plugin>> {
        self.plugins.iter().find(|p| p.info().package == package)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Plugin>> {
        self.plugins.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.plugins.iter().map(|p| p.info().package))
            .finish()
    }
}

/// What a transport tells the core about itself (for `info` and `handle_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportInfo {
    pub package: &'static str,
    pub name: &'static str,
    pub author: &'static str,
    pub description: &'static str,
    pub version: i64,
    pub version_string: &'static str,
}
