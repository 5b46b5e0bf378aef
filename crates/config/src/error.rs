//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong reading configuration. Every variant names the file, so a
/// user with a dozen `.jcfg` files knows which one to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (or a configured folder does not exist).
    #[error("{}: {source}", .path.display())]
    Io {
        /// The path we tried to read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid `.jcfg` (or legacy INI) syntax.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// File name as given to the parser.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What was wrong.
        message: String,
    },
    /// A setting parsed fine but its value is unusable for its key (wrong type, out of
    /// range, unknown enum value). Refused rather than silently defaulted.
    #[error("{}: {category}.{key}: {message}", location(.file, .line_column))]
    Invalid {
        /// File name.
        file: String,
        /// Line and column of the setting, when known.
        line_column: Option<(usize, usize)>,
        /// Category (e.g. `general`).
        category: String,
        /// Setting name.
        key: String,
        /// What was wrong.
        message: String,
    },
}

fn location(file: &str, line_column: &Option<(usize, usize)>) -> String {
    match line_column {
        Some((l, c)) => format!("{file}:{l}:{c}"),
        None => file.to_string(),
    }
}
