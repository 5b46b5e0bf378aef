//! Plugin calls made outside the core: a request that reaches a plugin is handled in two steps,
//! so the caller can run the plugin without holding whatever lock guards the [`Gateway`].
//!
//! 1. [`Gateway::start_request`] / [`Gateway::start_admin`] validate the request and return a
//!    [`PluginCall`] (or the response, when no plugin is involved). For a `message`, the handle
//!    now has a request in flight: plugin events for it are held back from then on.
//! 2. [`PluginCall::run`] calls the plugin. It touches no gateway state.
//! 3. [`Gateway::finish_call`] builds the response from the plugin's answer, as Janus does, and
//!    releases the held events into the outputs — after the response, which the caller delivers
//!    before draining outputs.
//!
//! If the handle or its session went away meanwhile (`detach`, `destroy`, timeout, shutdown),
//! the request is answered as if it had arrived after that: 459 or 458. The held events and the
//! in-flight count live on the handle, so they go with it.

use crate::session::Handle;
use crate::{Gateway, Now};
use jano_api::{msg, ErrorCode, JanusError, Map, Value};
use jano_plugin::{HandleRef, Jsep, Plugin, PluginResult, SessionRef};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// The first step of a request: its response, or the plugin call it needs.
#[must_use]
#[derive(Debug)]
pub enum Step {
    Done(Value),
    /// Run it, then hand the result to [`Gateway::finish_call`] (always: the handle counts the
    /// request as in flight until then).
    Call(PluginCall),
}

/// A plugin call the core asked for; see the module docs.
#[must_use = "a started plugin call must be run and finished"]
pub struct PluginCall(Box<Parts>);

struct Parts {
    ticket: Ticket,
    work: Work,
}

/// What the plugin is asked.
enum Work {
    Message {
        plugin: Arc<dyn Plugin>,
        href: HandleRef,
        state: SessionRef,
        transaction: String,
        body: Map<String, Value>,
        jsep: Option<Jsep>,
    },
    Admin {
        plugin: Arc<dyn Plugin>,
        request: Value,
    },
}

/// What the core needs to finish the request.
#[derive(Debug)]
enum Ticket {
    Message {
        href: HandleRef,
        serial: u64,
        transaction: String,
        package: &'static str,
    },
    Admin {
        transaction: String,
    },
}

/// The plugin's answer to a [`PluginCall`], for [`Gateway::finish_call`].
#[must_use = "a plugin call must be finished"]
#[derive(Debug)]
pub struct CallDone {
    ticket: Ticket,
    outcome: Outcome,
}

#[derive(Debug)]
enum Outcome {
    Message(PluginResult),
    Admin(Option<Value>),
    /// The plugin panicked: answered like a plugin that returned nothing.
    Panicked,
}

impl std::fmt::Debug for PluginCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginCall")
            .field("ticket", &self.0.ticket)
            .finish_non_exhaustive()
    }
}

impl PluginCall {
    pub(crate) fn message(
        h: &Handle,
        transaction: &str,
        body: Map<String, Value>,
        jsep: Option<Jsep>,
    ) -> PluginCall {
        PluginCall(Box::new(Parts {
            ticket: Ticket::Message {
                href: h.href.clone(),
                serial: h.serial,
                transaction: transaction.to_owned(),
                package: h.plugin.info().package,
            },
            work: Work::Message {
                plugin: h.plugin.clone(),
                href: h.href.clone(),
                state: h.state.clone(),
                transaction: transaction.to_owned(),
                body,
                jsep,
            },
        }))
    }

    pub(crate) fn admin(plugin: Arc<dyn Plugin>, transaction: &str, request: Value) -> PluginCall {
        PluginCall(Box::new(Parts {
            ticket: Ticket::Admin {
                transaction: transaction.to_owned(),
            },
            work: Work::Admin { plugin, request },
        }))
    }

    /// The handle a `message` is for (`None` for an Admin API call).
    pub fn handle(&self) -> Option<&HandleRef> {
        match &self.0.ticket {
            Ticket::Message { href, .. } => Some(href),
            Ticket::Admin { .. } => None,
        }
    }

    /// Calls the plugin. Needs no gateway: run it with no lock held. A panicking plugin is
    /// caught (and answered as a failed call) so the request is still finished.
    pub fn run(self) -> CallDone {
        let Parts { ticket, work } = *self.0;
        let outcome = catch_unwind(AssertUnwindSafe(|| match work {
            Work::Message {
                plugin,
                href,
                state,
                transaction,
                body,
                jsep,
            } => Outcome::Message(plugin.handle_message(&href, &state, &transaction, body, jsep)),
            Work::Admin { plugin, request } => Outcome::Admin(plugin.handle_admin_message(request)),
        }))
        .unwrap_or_else(|_| {
            tracing::error!(call = ?ticket, "plugin panicked");
            Outcome::Panicked
        });
        CallDone { ticket, outcome }
    }
}

impl Gateway {
    /// Finishes a request whose plugin call was [run](PluginCall::run): returns its response
    /// and releases the plugin events held back meanwhile (queued as outputs, to be drained
    /// after the response is delivered).
    pub fn finish_call(&mut self, now: Now, done: CallDone) -> Value {
        let CallDone { ticket, outcome } = done;
        match ticket {
            Ticket::Admin { transaction } => {
                let tx = Some(transaction.as_str());
                match outcome {
                    Outcome::Admin(Some(response)) => {
                        let mut m = msg::envelope("success", 0, tx);
                        m.insert("response".into(), response);
                        Value::Object(m)
                    }
                    _ => msg::error(
                        0,
                        tx,
                        &JanusError::new(
                            ErrorCode::Unknown,
                            "Plugin doesn't support Admin API messages",
                        ),
                    ),
                }
            }
            Ticket::Message {
                href,
                serial,
                transaction,
                package,
            } => {
                let (sid, hid) = (href.session_id, href.handle_id);
                let tx = Some(transaction.as_str());
                let Some(session) = self.sessions.get_mut(&sid) else {
                    return msg::error(sid, tx, &JanusError::no_such_session(sid));
                };
                let Some(h) = session.handles.get_mut(&hid).filter(|h| h.serial == serial) else {
                    return msg::error(sid, tx, &JanusError::no_such_handle(hid, sid));
                };
                h.calls = h.calls.saturating_sub(1);
                let release = if h.calls == 0 {
                    std::mem::take(&mut h.held)
                } else {
                    VecDeque::new()
                };
                let response = self.message_response(&href, package, tx, outcome);
                for ev in release {
                    self.handle_plugin_event(now, ev);
                }
                response
            }
        }
    }

    /// The response to a `message`, from the plugin's answer, as Janus builds it.
    fn message_response(
        &self,
        href: &HandleRef,
        package: &'static str,
        tx: Option<&str>,
        outcome: Outcome,
    ) -> Value {
        let sid = href.session_id;
        let result = match outcome {
            Outcome::Message(r) => r,
            Outcome::Admin(_) | Outcome::Panicked => PluginResult::Error(String::new()),
        };
        match result {
            PluginResult::Ok(data) => {
                let mut m = msg::envelope("success", sid, tx);
                m.insert("sender".into(), href.handle_id.into());
                self.add_opaque(&mut m, href);
                let mut pd = Map::new();
                pd.insert("plugin".into(), Value::String(package.into()));
                pd.insert("data".into(), Value::Object(data));
                m.insert("plugindata".into(), Value::Object(pd));
                Value::Object(m)
            }
            PluginResult::OkWait(hint) => {
                let mut m = msg::envelope("ack", sid, tx);
                if let Some(h) = hint {
                    m.insert("hint".into(), Value::String(h));
                }
                Value::Object(m)
            }
            PluginResult::Error(text) => {
                let reason = if text.is_empty() {
                    "Plugin returned a severe (unknown) error".to_owned()
                } else {
                    text
                };
                msg::error(sid, tx, &JanusError::new(ErrorCode::PluginMessage, reason))
            }
        }
    }

    /// Runs a started request to its response on this thread (tests, fuzzing).
    pub(crate) fn complete(&mut self, now: Now, step: Step) -> Value {
        match step {
            Step::Done(v) => v,
            Step::Call(call) => {
                let done = call.run();
                self.finish_call(now, done)
            }
        }
    }

    /// `message` requests handed to plugins and not finished yet (diagnostics and tests).
    pub fn calls_in_flight(&self) -> usize {
        self.sessions
            .values()
            .flat_map(|s| s.handles.values())
            .map(|h| h.calls as usize)
            .sum()
    }

    /// Plugin events held back for handles with requests in flight (diagnostics and tests).
    pub fn held_events(&self) -> usize {
        self.sessions
            .values()
            .flat_map(|s| s.handles.values())
            .map(|h| h.held.len())
            .sum()
    }
}
