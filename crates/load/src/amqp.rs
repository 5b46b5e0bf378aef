//! The Janus API over RabbitMQ (AMQP 0-9-1, `lapin`): one connection and one channel for all
//! clients. Requests are published on the default exchange with routing key `to_janus` (the
//! server's incoming queue) and `correlation_id` = the transaction; answers and events are
//! consumed (auto-ack) from the `from_janus` queue.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::mux::Router;
use crate::stats::{Failure, Kind};

pub struct AmqpLink {
    conn: Connection,
    ch: Channel,
    to_janus: String,
    from_janus: String,
    delete_reply_queue: bool,
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    deadline: Instant,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout_at(deadline, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: timeout")),
    }
}

/// Connects, checks that the server consumes `to_janus`, declares `from_janus` if the server
/// has not (same flags as Janus: non-durable, non-exclusive, not auto-delete) and consumes it.
pub async fn open(
    url: &str,
    to_janus: &str,
    from_janus: &str,
    delete_reply_queue: bool,
    router: Arc<Router>,
    deadline: Instant,
) -> Result<AmqpLink, String> {
    let props = ConnectionProperties::default().with_connection_name("jano-load".into());
    let conn = bounded("AMQP connect", deadline, Connection::connect(url, props)).await?;
    match setup(&conn, to_janus, from_janus, router, deadline).await {
        Ok((ch, stop, task)) => Ok(AmqpLink {
            conn,
            ch,
            to_janus: to_janus.to_string(),
            from_janus: from_janus.to_string(),
            delete_reply_queue,
            stop,
            task: std::sync::Mutex::new(Some(task)),
        }),
        Err(e) => {
            let close_by = Instant::now() + Duration::from_secs(1);
            let _ = tokio::time::timeout_at(close_by, conn.close(200, "setup failed".into())).await;
            Err(e)
        }
    }
}

async fn setup(
    conn: &Connection,
    to_janus: &str,
    from_janus: &str,
    router: Arc<Router>,
    deadline: Instant,
) -> Result<(Channel, watch::Sender<bool>, JoinHandle<()>), String> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    // A failed passive declare closes its channel: probe on throw-away channels.
    let probe = bounded("AMQP channel", deadline, conn.create_channel()).await?;
    let q = bounded(
        &format!("queue {to_janus:?} (the server's to_janus)"),
        deadline,
        probe.queue_declare(to_janus.into(), passive, FieldTable::default()),
    )
    .await?;
    if q.consumer_count() == 0 {
        return Err(format!(
            "queue {to_janus:?} has no consumer: is the server's RabbitMQ transport up?"
        ));
    }
    let probe = bounded("AMQP channel", deadline, conn.create_channel()).await?;
    let reply_queue_exists = tokio::time::timeout_at(
        deadline,
        probe.queue_declare(from_janus.into(), passive, FieldTable::default()),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let ch = bounded("AMQP channel", deadline, conn.create_channel()).await?;
    if !reply_queue_exists {
        bounded(
            &format!("declaring queue {from_janus:?}"),
            deadline,
            ch.queue_declare(
                from_janus.into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
    }
    let mut consumer = bounded(
        &format!("consuming {from_janus:?}"),
        deadline,
        ch.basic_consume(
            from_janus.into(),
            "jano-load".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await?;
    let (stop, mut stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop_rx.changed() => break,
                d = consumer.next() => match d {
                    Some(Ok(d)) => router.dispatch(&d.data),
                    Some(Err(e)) => {
                        router.break_link(format!("AMQP consumer: {e}"));
                        break;
                    }
                    None => {
                        router.break_link("AMQP consumer cancelled".into());
                        break;
                    }
                }
            }
        }
    });
    Ok((ch, stop, task))
}

impl AmqpLink {
    pub async fn publish(
        &self,
        kind: Kind,
        tx: &str,
        body: String,
        deadline: Instant,
    ) -> Result<(), Failure> {
        let props = BasicProperties::default()
            .with_correlation_id(tx.into())
            .with_content_type("application/json".into());
        let fut = self.ch.basic_publish(
            "".into(),
            self.to_janus.as_str().into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            props,
        );
        match tokio::time::timeout_at(deadline, fut).await {
            Ok(Ok(_confirm_not_requested)) => Ok(()),
            Ok(Err(e)) => Err(Failure::new(kind, "AMQP publish failed", e.to_string())),
            Err(_) => Err(Failure::new(kind, "timeout", "publishing")),
        }
    }

    /// Stops consuming, deletes the reply queue if asked to, closes the connection.
    pub async fn shutdown(&self, deadline: Instant) {
        let _ = self.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(mut task) = task {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
            }
        }
        if self.delete_reply_queue {
            let _ = tokio::time::timeout_at(
                deadline,
                self.ch.queue_delete(
                    self.from_janus.as_str().into(),
                    QueueDeleteOptions::default(),
                ),
            )
            .await;
        }
        let _ = tokio::time::timeout_at(deadline, self.conn.close(200, "bye".into())).await;
    }
}
