//! The Janus API error codes (`apierror.h` numbering) and the single place where a failure
//! becomes `{"code":N,"reason":"..."}`.

use std::fmt;

/// Janus API error codes. The numbers are part of the wire contract.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Unauthorized,
    UnauthorizedPlugin,
    Unknown,
    TransportSpecific,
    MissingRequest,
    UnknownRequest,
    InvalidJson,
    InvalidJsonObject,
    MissingMandatoryElement,
    InvalidRequestPath,
    SessionNotFound,
    HandleNotFound,
    PluginNotFound,
    PluginAttach,
    PluginMessage,
    PluginDetach,
    JsepUnknownType,
    JsepInvalidSdp,
    TrickleInvalidStream,
    InvalidElementType,
    SessionConflict,
    UnexpectedAnswer,
    TokenNotFound,
    WebrtcState,
    NotAcceptingSessions,
}

impl ErrorCode {
    /// The numeric code sent on the wire.
    pub const fn code(self) -> u16 {
        use ErrorCode::*;
        match self {
            Unauthorized => 403,
            UnauthorizedPlugin => 405,
            Unknown => 490,
            TransportSpecific => 450,
            MissingRequest => 452,
            UnknownRequest => 453,
            InvalidJson => 454,
            InvalidJsonObject => 455,
            MissingMandatoryElement => 456,
            InvalidRequestPath => 457,
            SessionNotFound => 458,
            HandleNotFound => 459,
            PluginNotFound => 460,
            PluginAttach => 461,
            PluginMessage => 462,
            PluginDetach => 463,
            JsepUnknownType => 464,
            JsepInvalidSdp => 465,
            TrickleInvalidStream => 466,
            InvalidElementType => 467,
            SessionConflict => 468,
            UnexpectedAnswer => 469,
            TokenNotFound => 470,
            WebrtcState => 471,
            NotAcceptingSessions => 472,
        }
    }

    /// Janus's default reason text, used when no specific text is given.
    pub const fn default_reason(self) -> &'static str {
        use ErrorCode::*;
        match self {
            Unauthorized => "Unauthorized request (wrong or missing secret/token)",
            UnauthorizedPlugin => "Unauthorized access to plugin (token is not allowed to)",
            Unknown => "Unknown error",
            TransportSpecific => "Transport specific error",
            MissingRequest => "Missing request",
            UnknownRequest => "Unknown request",
            InvalidJson => "Invalid JSON",
            InvalidJsonObject => "Invalid JSON Object",
            MissingMandatoryElement => "Missing mandatory element",
            InvalidRequestPath => "Invalid path for this request",
            SessionNotFound => "Session not found",
            HandleNotFound => "Handle not found",
            PluginNotFound => "Plugin not found",
            PluginAttach => "Error attaching plugin",
            PluginMessage => "Error sending message to plugin",
            PluginDetach => "Error detaching from plugin",
            JsepUnknownType => "Unsupported JSEP type",
            JsepInvalidSdp => "Invalid SDP",
            TrickleInvalidStream => "Invalid stream",
            InvalidElementType => "Invalid element type",
            SessionConflict => "Session ID already in use",
            UnexpectedAnswer => "Unexpected ANSWER (no OFFER)",
            TokenNotFound => "Token not found",
            WebrtcState => "Wrong WebRTC state",
            NotAcceptingSessions => "Currently not accepting new sessions",
        }
    }

    /// Every code, for tests and documentation.
    pub const ALL: [ErrorCode; 25] = {
        use ErrorCode::*;
        [
            Unauthorized,
            UnauthorizedPlugin,
            Unknown,
            TransportSpecific,
            MissingRequest,
            UnknownRequest,
            InvalidJson,
            InvalidJsonObject,
            MissingMandatoryElement,
            InvalidRequestPath,
            SessionNotFound,
            HandleNotFound,
            PluginNotFound,
            PluginAttach,
            PluginMessage,
            PluginDetach,
            JsepUnknownType,
            JsepInvalidSdp,
            TrickleInvalidStream,
            InvalidElementType,
            SessionConflict,
            UnexpectedAnswer,
            TokenNotFound,
            WebrtcState,
            NotAcceptingSessions,
        ]
    };
}

/// A Janus API failure: a code and the reason text clients will display.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct JanusError {
    pub code: ErrorCode,
    pub reason: String,
}

impl fmt::Display for JanusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code.code(), self.reason)
    }
}

impl JanusError {
    pub fn new(code: ErrorCode, reason: impl Into<String>) -> Self {
        JanusError {
            code,
            reason: reason.into(),
        }
    }

    /// The error with Janus's default reason for its code.
    pub fn of(code: ErrorCode) -> Self {
        JanusError::new(code, code.default_reason())
    }

    /// `Missing mandatory element (<name>)`.
    pub fn missing(name: &str) -> Self {
        JanusError::new(
            ErrorCode::MissingMandatoryElement,
            format!("Missing mandatory element ({name})"),
        )
    }

    /// `Invalid element type (<name> should be <kind>)`.
    pub fn invalid(name: &str, kind: &str) -> Self {
        JanusError::new(
            ErrorCode::InvalidElementType,
            format!("Invalid element type ({name} should be {kind})"),
        )
    }

    /// The same code with another reason text.
    pub fn with_reason(self, reason: impl Into<String>) -> Self {
        JanusError::new(self.code, reason)
    }

    pub fn unauthorized() -> Self {
        JanusError::of(ErrorCode::Unauthorized)
    }

    pub fn no_such_session(sid: u64) -> Self {
        JanusError::new(ErrorCode::SessionNotFound, format!("No such session {sid}"))
    }

    pub fn no_such_handle(hid: u64, sid: u64) -> Self {
        JanusError::new(
            ErrorCode::HandleNotFound,
            format!("No such handle {hid} in session {sid}"),
        )
    }

    pub fn unhandled_at_path(verb: &str) -> Self {
        JanusError::new(
            ErrorCode::InvalidRequestPath,
            format!("Unhandled request '{verb}' at this path"),
        )
    }

    pub fn unknown_request(verb: &str) -> Self {
        JanusError::new(
            ErrorCode::UnknownRequest,
            format!("Unknown request '{verb}'"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_in_janus_range() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.code()), "duplicate {}", c.code());
            assert!((403..=490).contains(&c.code()));
            assert!(!c.default_reason().is_empty());
        }
    }

    #[test]
    fn helper_wording_matches_janus() {
        assert_eq!(
            JanusError::missing("transaction").reason,
            "Missing mandatory element (transaction)"
        );
        assert_eq!(
            JanusError::invalid("id", "a positive integer").reason,
            "Invalid element type (id should be a positive integer)"
        );
        assert_eq!(
            JanusError::no_such_handle(5, 7).reason,
            "No such handle 5 in session 7"
        );
    }
}
