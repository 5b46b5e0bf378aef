//! Replaying fuzz inputs on stable Rust, shared by the corpus tests of the crates that include
//! this file by path (`crates/core/tests/fuzz_corpus.rs`, `crates/media/tests/fuzz_corpus.rs`):
//! every input in `fuzz/corpus/<target>/` must pass, every one in `fuzz/known-crashes/<target>/`
//! must still panic.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files directly in `dir`, sorted; none if it does not exist.
pub fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `run` on every input in `dir`; returns the inputs that panicked, with the message.
pub fn replay(dir: &Path, run: fn(&[u8])) -> (usize, Vec<String>) {
    let files = inputs(dir);
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| run(&data))) {
            let text = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failed.push(format!("{}: {text}", path.display()));
        }
    }
    (files.len(), failed)
}

pub fn corpus(target: &str, run: fn(&[u8])) {
    let (n, failed) = replay(&fuzz_dir().join("corpus").join(target), run);
    assert!(n > 0, "empty corpus for {target}");
    assert!(
        failed.is_empty(),
        "{} of {n} {target} corpus inputs broke an invariant:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

pub fn known_crashes(target: &str, run: fn(&[u8])) {
    let dir = fuzz_dir().join("known-crashes").join(target);
    let files = inputs(&dir);
    let (_, failed) = replay(&dir, run);
    let fixed: Vec<String> = files
        .iter()
        .map(|p| p.display().to_string())
        .filter(|p| !failed.iter().any(|f| f.starts_with(&format!("{p}: "))))
        .collect();
    assert!(
        fixed.is_empty(),
        "known crashes no longer crash; move them to fuzz/corpus/{target}/:\n{}",
        fixed.join("\n")
    );
}
