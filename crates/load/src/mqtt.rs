//! The Janus API over MQTT 3.1.1 (`rumqttc`): one MQTT client for all clients. Requests are
//! published to the server's `subscribe_topic` (`--to-janus`), answers and events arrive on
//! its `publish_topic` (`--from-janus`), to which this client subscribes.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS, SubscribeReasonCode};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::mux::Router;
use crate::stats::{Failure, Kind};

pub struct MqttLink {
    client: AsyncClient,
    topic: String,
    qos: QoS,
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

pub fn qos(q: u8) -> Result<QoS, String> {
    match q {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        2 => Ok(QoS::ExactlyOnce),
        _ => Err(format!("MQTT QoS {q}: must be 0, 1 or 2")),
    }
}

/// `mqtt://[user[:password]@]host[:port]` (or `tcp://`) → credentials, host, port.
type Parsed = (Option<(String, String)>, String, u16);

fn parse_url(url: &str) -> Result<Parsed, String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| format!("{url:?}: no scheme"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (creds, hostport) = match authority.rsplit_once('@') {
        Some((ui, hp)) => {
            let (u, p) = ui.split_once(':').unwrap_or((ui, ""));
            (Some((u.to_string(), p.to_string())), hp)
        }
        None => (None, authority),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: unclosed ["))?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port {p:?}"))?,
        None => 1883,
    };
    Ok((creds, host.to_string(), port))
}

/// Connects and subscribes to `from_janus`; returns once the broker acknowledged the
/// subscription.
pub async fn open(
    url: &str,
    to_janus: &str,
    from_janus: &str,
    q: QoS,
    router: Arc<Router>,
    deadline: Instant,
) -> Result<MqttLink, String> {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    let (creds, host, port) = parse_url(url)?;
    let suffix: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(10)
        .map(char::from)
        .collect();
    let mut o = MqttOptions::new(format!("jano-load-{suffix}"), host, port);
    o.set_keep_alive(Duration::from_secs(20));
    o.set_clean_session(true);
    o.set_inflight(1024);
    o.set_max_packet_size(1 << 20, 1 << 20);
    if let Some((u, p)) = creds {
        o.set_credentials(u, p);
    }
    let (client, mut el) = AsyncClient::new(o, 4096);
    // Without it Nagle's algorithm holds small publishes back (tens of ms per request).
    let mut net = el.network_options();
    net.set_tcp_nodelay(true);
    el.set_network_options(net);
    let (stop, mut stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = watch::channel::<Option<Result<(), String>>>(None);
    let sub_client = client.clone();
    let topic = from_janus.to_string();
    let task = tokio::spawn(async move {
        let mut ready = false;
        loop {
            tokio::select! {
                _ = stop_rx.changed() => break,
                ev = el.poll() => match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        // Clean session: (re)subscribe on every connection.
                        if let Err(e) = sub_client.try_subscribe(topic.as_str(), q) {
                            router.break_link(format!("MQTT subscribe: {e}"));
                            let _ = ready_tx.send(Some(Err(format!("MQTT subscribe: {e}"))));
                            break;
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(s))) => {
                        if s.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) {
                            let why = format!("the broker refused the subscription to {topic:?}");
                            router.break_link(why.clone());
                            let _ = ready_tx.send(Some(Err(why)));
                            break;
                        }
                        ready = true;
                        let _ = ready_tx.send(Some(Ok(())));
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if p.topic == topic {
                            router.dispatch(&p.payload);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if !ready {
                            let _ = ready_tx.send(Some(Err(format!("MQTT: {e}"))));
                            break;
                        }
                        // rumqttc reconnects on the next poll; answers meanwhile are lost and
                        // the clients waiting for them time out.
                        tokio::select! {
                            _ = stop_rx.changed() => break,
                            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        }
                    }
                }
            }
        }
        // Polite disconnect, bounded.
        if sub_client.try_disconnect().is_ok() {
            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                loop {
                    match el.poll().await {
                        Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await;
        }
    });
    let wait = async {
        loop {
            if let Some(r) = ready_rx.borrow_and_update().clone() {
                return r;
            }
            if ready_rx.changed().await.is_err() {
                return Err("MQTT event loop ended".to_string());
            }
        }
    };
    let r = match tokio::time::timeout_at(deadline, wait).await {
        Ok(r) => r,
        Err(_) => Err(format!("MQTT: no subscription to {from_janus:?} in time")),
    };
    let link = MqttLink {
        client,
        topic: to_janus.to_string(),
        qos: q,
        stop,
        task: std::sync::Mutex::new(Some(task)),
    };
    match r {
        Ok(()) => Ok(link),
        Err(e) => {
            link.shutdown(Instant::now() + Duration::from_secs(1)).await;
            Err(e)
        }
    }
}

impl MqttLink {
    pub async fn publish(
        &self,
        kind: Kind,
        body: String,
        deadline: Instant,
    ) -> Result<(), Failure> {
        let fut = self
            .client
            .publish(self.topic.as_str(), self.qos, false, body.into_bytes());
        match tokio::time::timeout_at(deadline, fut).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Failure::new(kind, "MQTT publish failed", e.to_string())),
            Err(_) => Err(Failure::new(kind, "timeout", "publishing")),
        }
    }

    /// Stops the event loop (after a polite DISCONNECT), bounded by `deadline`.
    pub async fn shutdown(&self, deadline: Instant) {
        let _ = self.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(mut task) = task {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1").unwrap(),
            (None, "127.0.0.1".to_string(), 1883)
        );
        assert_eq!(
            parse_url("tcp://guest:pw@localhost:1884").unwrap(),
            (
                Some(("guest".to_string(), "pw".to_string())),
                "localhost".to_string(),
                1884
            )
        );
        assert_eq!(parse_url("mqtt://[::1]:1").unwrap().1, "::1");
        assert!(parse_url("mqtt://h:x").is_err());
    }
}
