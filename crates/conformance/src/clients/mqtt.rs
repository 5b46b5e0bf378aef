//! The mqtt client of the conversation suite (being written).
