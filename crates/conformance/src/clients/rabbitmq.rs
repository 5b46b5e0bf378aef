//! The rabbitmq client of the conversation suite (being written).
