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
// suite:rabbitmq
// suite:mqtt
// suite:nanomsg
// suite:unix
