//! The media path of a published stream: the shared layer machinery of `jano_plugin::layers`.

pub use jano_plugin::layers::*;
