//! [`ConfigSet`]: everything jano reads at startup from a Janus configuration folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::janus::JanusConfig;
use crate::jcfg::Jcfg;
use crate::transports::{HttpConfig, WsConfig};

/// Package name of the HTTP transport's configuration.
pub const HTTP_PACKAGE: &str = "janus.transport.http";
/// Package name of the WebSockets transport's configuration.
pub const WS_PACKAGE: &str = "janus.transport.websockets";

/// All configuration jano needs at startup.
///
/// Components whose file is missing get jano's built-in default, so an empty folder
/// behaves exactly like [`ConfigSet::builtin`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSet {
    /// `janus.jcfg`.
    pub janus: JanusConfig,
    /// `janus.transport.http.jcfg`.
    pub http: HttpConfig,
    /// `janus.transport.websockets.jcfg`.
    pub websockets: WsConfig,
    /// Raw configuration of every other transport found (rabbitmq, mqtt, nanomsg, pfunix),
    /// keyed by package, e.g. `janus.transport.mqtt`.
    pub transports: BTreeMap<String, Jcfg>,
    /// Raw configuration of every plugin found, keyed by package, e.g. `janus.plugin.echotest`.
    pub plugins: BTreeMap<String, Jcfg>,
    /// Raw configuration of every event handler found (`janus.eventhandler.*`).
    pub eventhandlers: BTreeMap<String, Jcfg>,
    /// Raw configuration of every logger found (`janus.logger.*`).
    pub loggers: BTreeMap<String, Jcfg>,
    /// The configuration folder actually used, if any.
    pub folder: Option<PathBuf>,
    /// Every file read, in reading order (for a startup log line).
    pub files: Vec<PathBuf>,
    /// Non-fatal oddities worth logging (legacy INI files used, missing configs folder).
    pub warnings: Vec<String>,
}

impl Default for ConfigSet {
    fn default() -> Self {
        ConfigSet::builtin()
    }
}

/// Component file name prefixes and the map each kind goes to.
#[derive(Clone, Copy)]
enum Kind {
    Transport,
    Plugin,
    EventHandler,
    Logger,
}

const KINDS: [(&str, Kind); 5] = [
    ("janus.transport.", Kind::Transport),
    ("janus.plugin.", Kind::Plugin),
    // jano's own plugins (opt-in, see the server's setup).
    ("jano.plugin.", Kind::Plugin),
    ("janus.eventhandler.", Kind::EventHandler),
    ("janus.logger.", Kind::Logger),
];

impl ConfigSet {
    /// jano's configuration with no files at all: HTTP on 8088 and WebSockets on 8188 on
    /// all interfaces, both Admin APIs on loopback only (7088 / 7188) protected by the
    /// Janus sample `admin_secret`, every plugin enabled, everything else Janus defaults.
    pub fn builtin() -> ConfigSet {
        ConfigSet {
            janus: JanusConfig::builtin(),
            http: HttpConfig::builtin(),
            websockets: WsConfig::builtin(),
            transports: BTreeMap::new(),
            plugins: BTreeMap::new(),
            eventhandlers: BTreeMap::new(),
            loggers: BTreeMap::new(),
            folder: None,
            files: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Loads configuration like Janus's `-F <folder>` / `-C <file>` options.
    ///
    /// * main file: `main_file`, else `<folder>/janus.jcfg` (or legacy `janus.cfg`);
    /// * folder: `folder`, else `general.configs_folder` of the main file, else the main
    ///   file's directory;
    /// * a missing component file means jano's built-in default for that component; a
    ///   file that exists but does not parse, or holds unusable values, is an error;
    /// * with neither argument nothing is read and the result is [`ConfigSet::builtin`].
    pub fn load(folder: Option<&Path>, main_file: Option<&Path>) -> Result<ConfigSet, ConfigError> {
        let mut set = ConfigSet::builtin();
        if folder.is_none() && main_file.is_none() {
            return Ok(set);
        }
        if let Some(dir) = folder {
            if !dir.is_dir() {
                return Err(not_a_folder(dir));
            }
        }

        let main = match main_file {
            Some(path) => Some(load_main_file(path)?),
            None => match folder {
                Some(dir) => Jcfg::load_component(dir, "janus")?,
                None => None,
            },
        };
        if let Some((cfg, path)) = &main {
            set.janus = JanusConfig::from_jcfg(cfg, &path.display().to_string())?;
            set.note_file(path);
        }

        let folder = match (folder, main_file) {
            (Some(dir), _) => Some(dir.to_path_buf()),
            (None, Some(file)) => Some(match &set.janus.general.configs_folder {
                Some(configured) => PathBuf::from(configured),
                None => parent_dir(file),
            }),
            (None, None) => None,
        };
        set.folder = folder.clone();
        let Some(folder) = folder else {
            return Ok(set);
        };
        if !folder.is_dir() {
            set.warnings.push(format!(
                "configs folder {} does not exist: using built-in defaults for every component",
                folder.display()
            ));
            return Ok(set);
        }

        for package in component_packages(&folder)? {
            let Some((cfg, path)) = Jcfg::load_component(&folder, &package)? else {
                continue;
            };
            set.note_file(&path);
            let name = path.display().to_string();
            let kind = KINDS
                .iter()
                .find(|(prefix, _)| package.starts_with(prefix))
                .map(|(_, kind)| *kind);
            match kind {
                Some(Kind::Transport) if package == HTTP_PACKAGE => {
                    set.http = HttpConfig::from_jcfg(&cfg, &name)?;
                }
                Some(Kind::Transport) if package == WS_PACKAGE => {
                    set.websockets = WsConfig::from_jcfg(&cfg, &name)?;
                }
                Some(Kind::Transport) => {
                    set.transports.insert(package, cfg);
                }
                Some(Kind::Plugin) => {
                    set.plugins.insert(package, cfg);
                }
                Some(Kind::EventHandler) => {
                    set.eventhandlers.insert(package, cfg);
                }
                Some(Kind::Logger) => {
                    set.loggers.insert(package, cfg);
                }
                None => {}
            }
        }
        Ok(set)
    }

    /// A plugin's raw configuration, e.g. `plugin_config("janus.plugin.echotest")`.
    pub fn plugin_config(&self, package: &str) -> Option<&Jcfg> {
        self.plugins.get(package)
    }

    /// Whether `janus.jcfg` leaves this plugin enabled (not in `plugins.disable`).
    pub fn plugin_enabled(&self, package: &str) -> bool {
        !self.janus.plugin_disabled(package)
    }

    /// Whether `janus.jcfg` leaves this transport enabled (not in `transports.disable`).
    pub fn transport_enabled(&self, package: &str) -> bool {
        !self.janus.transport_disabled(package)
    }

    fn note_file(&mut self, path: &Path) {
        if path.extension().and_then(|e| e.to_str()) == Some("cfg") {
            self.warnings.push(format!(
                "{}: legacy INI configuration; consider converting it to .jcfg",
                path.display()
            ));
        }
        self.files.push(path.to_path_buf());
    }
}

/// `-C file`: the file itself, or its legacy `.cfg` sibling when a missing `.jcfg` was
/// named; otherwise the read error naming the path.
fn load_main_file(path: &Path) -> Result<(Jcfg, PathBuf), ConfigError> {
    if !path.exists() && path.extension().and_then(|e| e.to_str()) == Some("jcfg") {
        let legacy = path.with_extension("cfg");
        if legacy.is_file() {
            return Jcfg::load(&legacy).map(|cfg| (cfg, legacy));
        }
    }
    Jcfg::load(path).map(|cfg| (cfg, path.to_path_buf()))
}

fn parent_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn not_a_folder(dir: &Path) -> ConfigError {
    ConfigError::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "configs folder does not exist or is not a directory",
        ),
    }
}

/// Packages (`janus.plugin.echotest`, ...) with a `.jcfg` or `.cfg` file in `folder`,
/// sorted and de-duplicated.
fn component_packages(folder: &Path) -> Result<Vec<String>, ConfigError> {
    let io = |source| ConfigError::Io {
        path: folder.to_path_buf(),
        source,
    };
    let mut packages = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(folder).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(stem) = name
            .strip_suffix(".jcfg")
            .or_else(|| name.strip_suffix(".cfg"))
        else {
            continue;
        };
        let is_component = KINDS.iter().any(|(prefix, _)| {
            stem.strip_prefix(prefix)
                .is_some_and(|short| !short.is_empty() && !short.contains('.'))
        });
        if is_component && entry.path().is_file() {
            packages.insert(stem.to_string());
        }
    }
    Ok(packages.into_iter().collect())
}
