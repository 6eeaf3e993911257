//! TLS for probes: verification on by default, custom CAs, and the earliest
//! certificate expiry of the chain, reported even when verification fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::outcome::Failure;
use crate::core::FailureKind;
use crate::plan::TlsSpec;

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            // Unreadable system certificates leave the store empty; probes
            // then fail verification visibly instead of the daemon refusing to start.
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            Arc::new(roots)
        })
        .clone()
}

/// A verifying client configuration with the system roots, for gwanje's own
/// outgoing calls (webhooks, Alertmanager).
pub fn api_client_config() -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(system_roots())
        .with_no_client_auth()
}

/// Why a TLS client could not be set up; every probe run reports it.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file could not be used.
    #[error("CA file {}: {why}", file.display())]
    CaFile {
        /// The file.
        file: std::path::PathBuf,
        /// Why.
        why: String,
    },
    /// The certificate verifier could not be built.
    #[error("TLS verifier: {0}")]
    Verifier(String),
    /// No protocol version is usable.
    #[error("TLS versions: {0}")]
    Versions(rustls::Error),
}

/// A TLS client set up once per target.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    verifier: Arc<WebPkiServerVerifier>,
    insecure: bool,
    server_name: Option<String>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// TLS clients shared by every target with the same settings: each client
/// holds a copy of the root store, which costs tens of kilobytes.
type Shared = HashMap<(TlsSpec, Vec<Vec<u8>>), Weak<TlsClient>>;

impl TlsClient {
    /// The client for `spec` offering `alpn`, shared with targets that use the same.
    pub fn shared(spec: &TlsSpec, alpn: &[&[u8]]) -> Result<Arc<Self>, TlsSetupError> {
        static CLIENTS: OnceLock<Mutex<Shared>> = OnceLock::new();
        let key = (spec.clone(), alpn.iter().map(|p| p.to_vec()).collect());
        let mut clients = CLIENTS
            .get_or_init(Default::default)
            .lock()
            .expect("tls client cache");
        if let Some(client) = clients.get(&key).and_then(Weak::upgrade) {
            return Ok(client);
        }
        let client = Arc::new(Self::new(spec, alpn)?);
        clients.retain(|_, c| c.strong_count() > 0);
        clients.insert(key, Arc::downgrade(&client));
        Ok(client)
    }

    /// Builds a client for `spec`, offering `alpn` protocols.
    fn new(spec: &TlsSpec, alpn: &[&[u8]]) -> Result<Self, TlsSetupError> {
        let mut roots = system_roots();
        if let Some(file) = &spec.ca_file {
            let roots = Arc::make_mut(&mut roots);
            let certs = CertificateDer::pem_file_iter(file)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| TlsSetupError::CaFile {
                    file: file.clone(),
                    why: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(TlsSetupError::CaFile {
                    file: file.clone(),
                    why: "it holds no certificate".into(),
                });
            }
            for c in certs {
                roots.add(c).map_err(|e| TlsSetupError::CaFile {
                    file: file.clone(),
                    why: e.to_string(),
                })?;
            }
        }
        let verifier = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| TlsSetupError::Verifier(e.to_string()))?;
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsSetupError::Versions)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(TlsClient {
            config: Arc::new(config),
            verifier,
            insecure: spec.insecure_skip_verify,
            server_name: spec.server_name.clone(),
        })
    }

    /// Runs the handshake over `tcp` to `host` (unless a server name is
    /// configured). Returns the stream and the chain's earliest expiry; the
    /// expiry is known even when the handshake fails verification.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        host: &str,
    ) -> (Result<TlsStream<TcpStream>, Failure>, Option<i64>) {
        let seen = Arc::new(Mutex::new(None));
        let mut config = (*self.config).clone();
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(RecordingVerifier {
                inner: self.verifier.clone(),
                insecure: self.insecure,
                earliest_expiry: seen.clone(),
            }));
        let name_text = self.server_name.as_deref().unwrap_or(host);
        let bare = name_text.trim_start_matches('[').trim_end_matches(']');
        let result = match ServerName::try_from(bare.to_string()) {
            Ok(name) => tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| {
                    let kind = match e.kind() {
                        std::io::ErrorKind::InvalidData => FailureKind::Tls,
                        _ => super::net::classify_io(&e),
                    };
                    Failure::new(kind, format!("TLS handshake with {name_text}: {e}"))
                }),
            Err(e) => Err(Failure::new(
                FailureKind::Tls,
                format!("server name {name_text:?}: {e}"),
            )),
        };
        let expiry = *seen.lock().expect("expiry lock");
        (result, expiry)
    }
}

/// Earliest `notAfter` among the certificates, Unix seconds.
pub fn earliest_expiry<'a>(certs: impl IntoIterator<Item = &'a CertificateDer<'a>>) -> Option<i64> {
    certs
        .into_iter()
        .filter_map(|der| x509_parser::parse_x509_certificate(der.as_ref()).ok())
        .map(|(_, cert)| cert.validity().not_after.timestamp())
        .min()
}

/// Records the presented chain's expiry, then verifies (unless told not to).
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    insecure: bool,
    earliest_expiry: Arc<Mutex<Option<i64>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.earliest_expiry.lock().expect("expiry lock") =
            earliest_expiry(std::iter::once(end_entity).chain(intermediates));
        if self.insecure {
            return Ok(ServerCertVerified::assertion());
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
