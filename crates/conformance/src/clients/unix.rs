//! The unix client of the conversation suite (being written).
