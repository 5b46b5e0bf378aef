//! `permanent` rooms: the plugin's configuration file is rewritten with the room's category
//! added, changed or removed; everything else in the file stays (comments excepted: the
//! parser does not keep them). Writes happen on the blocking pool, in order, each one with
//! the latest content.

use crate::config::RoomConfig;
use crate::json::Id;
use jano_config::Jcfg;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub struct Persist {
    path: Option<PathBuf>,
    /// The file as loaded plus every permanent change since.
    doc: Arc<Mutex<Jcfg>>,
    /// Serialises the writes.
    write: Arc<Mutex<()>>,
}

impl Persist {
    pub fn new(folder: Option<PathBuf>, loaded: Option<Jcfg>) -> Persist {
        Persist {
            path: folder.map(|f| f.join(format!("{}.jcfg", crate::PACKAGE))),
            doc: Arc::new(Mutex::new(loaded.unwrap_or_default())),
            write: Arc::new(Mutex::new(())),
        }
    }

    /// Whether permanent changes can be saved (there is a configuration folder).
    pub fn available(&self) -> bool {
        self.path.is_some()
    }

    /// Saves (or, with `None`, removes) a room's category, then writes the file.
    pub fn save(
        &self,
        services: &dyn jano_plugin::CoreServices,
        id: &Id,
        cfg: Option<&RoomConfig>,
    ) {
        let Some(path) = self.path.clone() else {
            return;
        };
        {
            let mut doc = self.doc.lock().unwrap_or_else(|e| e.into_inner());
            let name = format!("room-{id}");
            match cfg {
                Some(c) => doc
                    .root
                    .insert(name, jano_config::Value::Group(c.to_group())),
                None => {
                    doc.root.remove(&name);
                }
            }
        }
        let doc = self.doc.clone();
        let lock = self.write.clone();
        services.spawn_blocking(Box::new(move || {
            let _w = lock.lock().unwrap_or_else(|e| e.into_inner());
            let text = doc.lock().unwrap_or_else(|e| e.into_inner()).to_text();
            let tmp = path.with_extension("jcfg.tmp");
            let res = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &path));
            if let Err(e) = res {
                tracing::warn!("videoroom: cannot save {}: {e}", path.display());
            }
        }));
    }
}
