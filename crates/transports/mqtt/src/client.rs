//! One face over rumqttc's MQTT 3.1.1 and MQTT 5 clients: what the transport needs of them.

use crate::link::{Out, Route};
use crate::settings::{Settings, Version};
use bytes::Bytes;
use rumqttc::v5 as r5;
use std::time::Duration;

/// The largest MQTT packet (the protocol's own limit): jano applies its own payload limit and
/// answers with an error, where a client-side limit would drop the connection instead.
const MAX_PACKET: usize = 268_435_455 + 5;

/// What the event loop reports, in both protocol versions.
#[derive(Debug)]
pub enum Ev {
    /// Connected; the broker's packet size limit if it gave one (MQTT 5).
    ConnAck {
        max_packet: Option<usize>,
    },
    SubAck {
        ok: bool,
    },
    Message {
        topic: String,
        payload: Bytes,
        /// MQTT 5: the request's reply route.
        route: Option<Route>,
    },
    /// The client wrote the next publish as packet `pkid` (0 for QoS 0).
    Published(u16),
    /// The client holds the next publish until packet id `pkid` is free.
    Held(u16),
    /// The broker confirmed packet `pkid` (or refused it: either way it is done).
    Confirmed(u16),
    /// The DISCONNECT packet went out.
    Disconnected,
    Other,
}

/// The request side of the client: never blocks (a bounded channel to the event loop).
#[derive(Clone)]
pub enum Client {
    V4(rumqttc::AsyncClient),
    V5(r5::AsyncClient),
}

/// The event loop: owns the connection.
pub enum EventLoop {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<r5::EventLoop>),
}

fn qos4(q: u8) -> rumqttc::QoS {
    match q {
        0 => rumqttc::QoS::AtMostOnce,
        2 => rumqttc::QoS::ExactlyOnce,
        _ => rumqttc::QoS::AtLeastOnce,
    }
}

fn qos5(q: u8) -> r5::mqttbytes::QoS {
    match q {
        0 => r5::mqttbytes::QoS::AtMostOnce,
        2 => r5::mqttbytes::QoS::ExactlyOnce,
        _ => r5::mqttbytes::QoS::AtLeastOnce,
    }
}

/// Builds the client and its event loop from the settings.
pub fn build(s: &Settings) -> Result<(Client, EventLoop), String> {
    let transport = if s.broker.tls {
        let tls = s.tls.clone().unwrap_or_default();
        let config = crate::tls::client_config(&tls)?;
        rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(config))
    } else {
        rumqttc::Transport::tcp()
    };
    // Room for the in-flight window plus subscriptions and the disconnect.
    let cap = usize::from(s.max_inflight) + 16;
    let status_will = s
        .status
        .as_ref()
        .and_then(|st| st.disconnect_message.as_ref().map(|m| (st, m)));
    match s.version {
        Version::V311 => {
            let mut o = rumqttc::MqttOptions::new(&s.client_id, &s.broker.host, s.broker.port);
            o.set_transport(transport);
            // 0 disables the keep-alive; rumqttc refuses fractions, not zero.
            o.set_keep_alive(Duration::from_secs(s.keep_alive_interval));
            let clean = if s.client_id.is_empty() && !s.cleansession {
                tracing::warn!("MQTT: an empty client_id needs a clean session: using one");
                true
            } else {
                s.cleansession
            };
            o.set_clean_session(clean);
            o.set_credentials(&s.username, &s.password);
            o.set_inflight(s.max_inflight.max(1));
            o.set_max_packet_size(MAX_PACKET, MAX_PACKET);
            if let Some((st, m)) = status_will {
                o.set_last_will(rumqttc::LastWill::new(
                    &st.topic,
                    m.clone().into_bytes(),
                    qos4(st.qos),
                    st.retain,
                ));
            }
            let (c, mut el) = rumqttc::AsyncClient::new(o, cap);
            el.set_network_options(network_options());
            Ok((Client::V4(c), EventLoop::V4(Box::new(el))))
        }
        Version::V5 => {
            let mut o = r5::MqttOptions::new(&s.client_id, &s.broker.host, s.broker.port);
            o.set_transport(transport);
            // rumqttc's MQTT 5 client wants at least 5 s and cannot turn keep-alives off: the
            // protocol's longest interval stands in for "off".
            let ka = match s.keep_alive_interval {
                0 => 65535,
                k => k.max(5),
            };
            o.set_keep_alive(Duration::from_secs(ka));
            o.set_clean_start(s.cleansession);
            o.set_credentials(&s.username, &s.password);
            o.set_outgoing_inflight_upper_limit(s.max_inflight.max(1));
            o.set_max_packet_size(Some(u32::try_from(MAX_PACKET).unwrap_or(u32::MAX)));
            o.set_network_options(network_options());
            if let Some((st, m)) = status_will {
                o.set_last_will(r5::mqttbytes::v5::LastWill::new(
                    &st.topic,
                    m.clone().into_bytes(),
                    qos5(st.qos),
                    st.retain,
                    None,
                ));
            }
            let (c, el) = r5::AsyncClient::new(o, cap);
            Ok((Client::V5(c), EventLoop::V5(Box::new(el))))
        }
    }
}

impl Client {
    /// Hands a publish to the event loop; false if its channel is full or gone.
    pub fn publish(&self, out: &Out) -> bool {
        match self {
            Client::V4(c) => c
                .try_publish(
                    out.topic.as_str(),
                    qos4(out.qos),
                    out.retain,
                    out.payload.to_vec(),
                )
                .is_ok(),
            Client::V5(c) => {
                let r = match &out.props {
                    Some(p) => c.try_publish_with_properties(
                        out.topic.as_str(),
                        qos5(out.qos),
                        out.retain,
                        out.payload.clone(),
                        r5::mqttbytes::v5::PublishProperties {
                            correlation_data: p.correlation_data.clone(),
                            user_properties: p.user_properties.clone(),
                            ..Default::default()
                        },
                    ),
                    None => c.try_publish(
                        out.topic.as_str(),
                        qos5(out.qos),
                        out.retain,
                        out.payload.clone(),
                    ),
                };
                r.is_ok()
            }
        }
    }

    pub fn subscribe(&self, topic: &str, qos: u8) -> bool {
        match self {
            Client::V4(c) => c.try_subscribe(topic, qos4(qos)).is_ok(),
            Client::V5(c) => c.try_subscribe(topic, qos5(qos)).is_ok(),
        }
    }

    pub fn disconnect(&self) -> bool {
        match self {
            Client::V4(c) => c.try_disconnect().is_ok(),
            Client::V5(c) => c.try_disconnect().is_ok(),
        }
    }
}

impl EventLoop {
    /// The next event; an error means the connection is down (the next call reconnects).
    pub async fn poll(&mut self) -> Result<Ev, String> {
        match self {
            EventLoop::V4(el) => {
                use rumqttc::{Event, Outgoing, Packet, SubscribeReasonCode};
                let ev = el.poll().await.map_err(|e| e.to_string())?;
                Ok(match ev {
                    Event::Incoming(Packet::ConnAck(_)) => Ev::ConnAck { max_packet: None },
                    Event::Incoming(Packet::SubAck(s)) => Ev::SubAck {
                        ok: !s
                            .return_codes
                            .iter()
                            .any(|c| matches!(c, SubscribeReasonCode::Failure)),
                    },
                    Event::Incoming(Packet::Publish(p)) => Ev::Message {
                        topic: p.topic,
                        payload: p.payload,
                        route: None,
                    },
                    Event::Incoming(Packet::PubAck(a)) => Ev::Confirmed(a.pkid),
                    Event::Incoming(Packet::PubComp(a)) => Ev::Confirmed(a.pkid),
                    Event::Outgoing(Outgoing::Publish(pkid)) => Ev::Published(pkid),
                    Event::Outgoing(Outgoing::AwaitAck(pkid)) => Ev::Held(pkid),
                    Event::Outgoing(Outgoing::Disconnect) => Ev::Disconnected,
                    _ => Ev::Other,
                })
            }
            EventLoop::V5(el) => {
                use r5::mqttbytes::v5::{Packet, PubAckReason, PubRecReason};
                use r5::Event;
                use rumqttc::Outgoing;
                let ev = el.poll().await.map_err(|e| e.to_string())?;
                Ok(match ev {
                    Event::Incoming(Packet::ConnAck(c)) => Ev::ConnAck {
                        max_packet: c
                            .properties
                            .and_then(|p| p.max_packet_size)
                            .map(|m| m as usize),
                    },
                    Event::Incoming(Packet::SubAck(s)) => Ev::SubAck {
                        ok: s.return_codes.iter().all(|c| {
                            matches!(c, r5::mqttbytes::v5::SubscribeReasonCode::Success(_))
                        }),
                    },
                    Event::Incoming(Packet::Publish(p)) => {
                        let Ok(topic) = std::str::from_utf8(&p.topic) else {
                            tracing::debug!("MQTT message on a non-UTF-8 topic ignored");
                            return Ok(Ev::Other);
                        };
                        let route = p.properties.map(|props| Route {
                            response_topic: props.response_topic,
                            correlation_data: props.correlation_data,
                            user_properties: props.user_properties,
                        });
                        Ev::Message {
                            topic: topic.to_string(),
                            payload: p.payload,
                            route: Some(route.unwrap_or_default()),
                        }
                    }
                    Event::Incoming(Packet::PubAck(a)) => {
                        // "No matching subscribers" is accepted: delivered to nobody.
                        if !matches!(
                            a.reason,
                            PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                        ) {
                            tracing::warn!(pkid = a.pkid, reason = ?a.reason, "MQTT broker refused a publish");
                        }
                        Ev::Confirmed(a.pkid)
                    }
                    Event::Incoming(Packet::PubRec(r)) => {
                        if matches!(
                            r.reason,
                            PubRecReason::Success | PubRecReason::NoMatchingSubscribers
                        ) {
                            Ev::Other
                        } else {
                            // No PUBCOMP follows a refused QoS 2 publish: it is done.
                            tracing::warn!(pkid = r.pkid, reason = ?r.reason, "MQTT broker refused a publish");
                            Ev::Confirmed(r.pkid)
                        }
                    }
                    Event::Incoming(Packet::PubComp(c)) => Ev::Confirmed(c.pkid),
                    Event::Outgoing(Outgoing::Publish(pkid)) => Ev::Published(pkid),
                    Event::Outgoing(Outgoing::AwaitAck(pkid)) => Ev::Held(pkid),
                    Event::Outgoing(Outgoing::Disconnect) => Ev::Disconnected,
                    _ => Ev::Other,
                })
            }
        }
    }

    /// After a connection error: forget what rumqttc would resend by itself (the transport
    /// resends from its own outbox, so nothing goes twice), and requests still in its channel.
    pub fn forget_pending(&mut self) {
        match self {
            EventLoop::V4(el) => {
                el.clean();
                el.pending.clear();
            }
            EventLoop::V5(el) => {
                el.clean();
                el.pending.clear();
            }
        }
    }
}

/// Small request/response messages: without TCP_NODELAY each one waits for the broker's
/// delayed ACK (tens of milliseconds per request, measured with jano-load).
fn network_options() -> rumqttc::NetworkOptions {
    let mut n = rumqttc::NetworkOptions::new();
    n.set_tcp_nodelay(true);
    n
}
