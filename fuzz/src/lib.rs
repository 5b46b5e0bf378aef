//! The script interpreter shared by the fuzz targets and by
//! `crates/core/tests/fuzz_corpus.rs` (which includes `script.rs` by path).

pub mod script;
