//! The nanomsg client of the conversation suite (being written).
