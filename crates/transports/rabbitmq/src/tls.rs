//! TLS to the broker with rustls, honouring Janus's `ssl_*` options: `ssl_cacert` (added to the
//! system's roots), `ssl_cert` + `ssl_key` (client authentication), and `ssl_verify_peer` /
//! `ssl_verify_hostname` (both off by default in Janus, as in rabbitmq-c).

use crate::settings::Tls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore};
use std::sync::Arc;

/// Builds the client configuration once, at start-up: a missing or unreadable file is a
/// configuration error, not something to retry.
pub fn client_config(t: &Tls) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "RabbitMQ TLS: could not load some system certificates");
    }
    let (_, ignored) = roots.add_parsable_certificates(native.certs);
    if ignored > 0 {
        tracing::debug!(
            ignored,
            "RabbitMQ TLS: unparsable system certificates ignored"
        );
    }
    if let Some(ca) = &t.cacert {
        let certs = read_certs(ca)?;
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("ssl_cacert {}: {e}", ca.display()))?;
        }
    }
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let roots = Arc::new(roots);
    let builder = if t.verify_peer && t.verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        if !t.verify_peer {
            tracing::warn!(
                "RabbitMQ TLS: ssl_verify_peer is off (Janus's default): the broker's certificate \
                 is not checked"
            );
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| format!("TLS verifier: {e}"))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Lenient {
                webpki,
                provider,
                verify_peer: t.verify_peer,
                verify_hostname: t.verify_hostname,
            }))
    };
    let config = match (&t.cert, &t.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("ssl_key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("ssl_cert/ssl_key: {e}"))?
        }
        (Some(_), None) | (None, Some(_)) => {
            // rabbitmq-c only uses the pair; say so rather than silently ignoring one.
            tracing::error!(
                "RabbitMQ TLS: ssl_cert and ssl_key must both be set; no client certificate sent"
            );
            builder.with_no_client_auth()
        }
        (None, None) => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn read_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// Verification with peer and/or hostname checks switched off, as Janus allows.
/// Handshake signatures are always checked (they prove the peer holds the certificate's key).
#[derive(Debug)]
struct Lenient {
    webpki: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
    verify_peer: bool,
    verify_hostname: bool,
}

fn name_error(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    )
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let r = self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        match r {
            Ok(v) => Ok(v),
            // The chain is checked before the name, so a name error means a trusted chain.
            Err(e) if name_error(&e) && !self.verify_hostname => {
                Ok(ServerCertVerified::assertion())
            }
            Err(e) if self.verify_peer => Err(e),
            Err(_) if self.verify_hostname => {
                let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&cert, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            Err(_) => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
