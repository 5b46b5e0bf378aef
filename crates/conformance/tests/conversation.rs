//! The conversation suite over every transport. Each scenario starts its own server.

use jano_conformance::clients::{http::HttpSetup, ws::WsSetup};
use jano_conformance::scenarios;

macro_rules! suite {
    ($name:ident, $setup:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn core_flow() {
                scenarios::core_flow(&$setup).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn errors() {
                scenarios::errors(&$setup).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn admin_api() {
                scenarios::admin_api(&$setup).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn session_timeout() {
                scenarios::session_timeout(&$setup).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn auth() {
                scenarios::auth(&$setup).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn claim_from_http() {
                scenarios::claim_across(&HttpSetup, &$setup).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn claim_to_ws() {
                scenarios::claim_across(&$setup, &WsSetup).await;
            }
        }
    };
}

suite!(http, HttpSetup);
suite!(ws, WsSetup);
suite!(
    rabbitmq,
    jano_conformance::clients::rabbitmq::RabbitSetup::new()
);
suite!(
    mqtt_v311,
    jano_conformance::clients::mqtt::MqttSetup::v311()
);
suite!(mqtt_v5, jano_conformance::clients::mqtt::MqttSetup::v5());
suite!(nanomsg, jano_conformance::clients::nanomsg::NanomsgSetup);
suite!(
    unix_seqpacket,
    jano_conformance::clients::unix::UnixSetup::seqpacket()
);
suite!(
    unix_dgram,
    jano_conformance::clients::unix::UnixSetup::dgram()
);
