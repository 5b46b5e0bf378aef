//! `permanent` rooms and mountpoints: a plugin's configuration file rewritten with one category
//! added, changed or removed; everything else in the file stays (comments excepted: the parser
//! does not keep them). Writes happen on the blocking pool, in order, each one with the latest
//! content, through a temporary file renamed into place (a crash never leaves half a file).

use crate::CoreServices;
use jano_config::{Group, Jcfg, Value};
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
    /// The file `<package>.jcfg` in the configuration folder (none: nothing can be saved).
    pub fn new(folder: Option<PathBuf>, package: &str, loaded: Option<Jcfg>) -> Persist {
        Persist {
            path: folder.map(|f| f.join(format!("{package}.jcfg"))),
            doc: Arc::new(Mutex::new(loaded.unwrap_or_default())),
            write: Arc::new(Mutex::new(())),
        }
    }

    /// Whether permanent changes can be saved (there is a configuration folder).
    pub fn available(&self) -> bool {
        self.path.is_some()
    }

    /// A category as saved so far.
    pub fn category(&self, name: &str) -> Option<Group> {
        let doc = self.doc.lock().unwrap_or_else(|e| e.into_inner());
        match doc.root.get(name) {
            Some(Value::Group(g)) => Some(g.clone()),
            _ => None,
        }
    }

    /// Saves (or, with `None`, removes) a category, then writes the file.
    pub fn save(&self, services: &dyn CoreServices, name: &str, group: Option<Group>) {
        let Some(path) = self.path.clone() else {
            return;
        };
        {
            let mut doc = self.doc.lock().unwrap_or_else(|e| e.into_inner());
            match group {
                Some(g) => {
                    doc.root.insert(name.to_owned(), Value::Group(g));
                }
                None => {
                    doc.root.remove(name);
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
                tracing::warn!("cannot save {}: {e}", path.display());
            }
        }));
    }
}
