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

use super::certinfo::{self, AnchorExpiry};
use super::outcome::{Failure, TlsInfo};
use crate::core::FailureKind;
use crate::plan::TlsSpec;

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's trust anchors, and their expiries by subject.
fn system_trust() -> &'static (Arc<RootCertStore>, Arc<AnchorExpiry>) {
    static ROOTS: OnceLock<(Arc<RootCertStore>, Arc<AnchorExpiry>)> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let mut expiry = AnchorExpiry::new();
        // Unreadable system certificates leave the store empty; probes
        // then fail verification visibly instead of the daemon refusing to start.
        let certs = rustls_native_certs::load_native_certs().certs;
        certinfo::add_anchors(&mut expiry, certs.iter().map(|c| c.as_ref()));
        for cert in certs {
            let _ = roots.add(cert);
        }
        (Arc::new(roots), Arc::new(expiry))
    })
}

fn system_roots() -> Arc<RootCertStore> {
    system_trust().0.clone()
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

/// The client configuration for following a peer: only the CAs in
/// `ca_file` when given (a private CA for the peers), else the system's.
pub fn peer_client_config(
    ca_file: Option<&std::path::Path>,
) -> Result<ClientConfig, TlsSetupError> {
    let Some(file) = ca_file else {
        return Ok(api_client_config());
    };
    let ca_error = |why: String| TlsSetupError::CaFile {
        file: file.to_path_buf(),
        why,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
        .map_err(|e| ca_error(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| ca_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(ca_error("it holds no certificate".into()));
    }
    let mut roots = RootCertStore::empty();
    for c in certs {
        roots.add(c).map_err(|e| ca_error(e.to_string()))?;
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Versions)?
        .with_root_certificates(roots)
        .with_no_client_auth())
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
    anchors: Arc<AnchorExpiry>,
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
        let mut anchors = system_trust().1.clone();
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
            certinfo::add_anchors(
                Arc::make_mut(&mut anchors),
                certs.iter().map(|c| c.as_ref()),
            );
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
            anchors,
            insecure: spec.insecure_skip_verify,
            server_name: spec.server_name.clone(),
        })
    }

    /// Runs the handshake over `tcp` to `host` (unless a server name is
    /// configured). Returns the stream and what the handshake showed; the
    /// presented chain is known even when verification fails.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        host: &str,
    ) -> (Result<TlsStream<TcpStream>, Failure>, TlsInfo) {
        let seen = Arc::new(Mutex::new(TlsInfo::default()));
        let mut config = (*self.config).clone();
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(RecordingVerifier {
                inner: self.verifier.clone(),
                anchors: self.anchors.clone(),
                insecure: self.insecure,
                seen: seen.clone(),
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
        let mut info = std::mem::take(&mut *seen.lock().expect("tls info lock"));
        if let Ok(stream) = &result {
            info.version = stream.get_ref().1.protocol_version().map(version_name);
        } else {
            info.chain_expiry = None;
        }
        (result, info)
    }
}

/// The version as blackbox_exporter's `probe_tls_version_info` spells it.
fn version_name(v: rustls::ProtocolVersion) -> &'static str {
    match v {
        rustls::ProtocolVersion::TLSv1_0 => "TLS 1.0",
        rustls::ProtocolVersion::TLSv1_1 => "TLS 1.1",
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2",
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3",
        _ => "unknown",
    }
}

/// Records the presented chain, then verifies (unless told not to); the
/// verified chain's expiry only when verification passed.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    anchors: Arc<AnchorExpiry>,
    insecure: bool,
    seen: Arc<Mutex<TlsInfo>>,
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
        let ders: Vec<CertificateDer<'_>> = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| CertificateDer::from(c.as_ref()))
            .collect();
        let certs = certinfo::parse(&ders);
        let verdict = if self.insecure {
            Ok(ServerCertVerified::assertion())
        } else {
            self.inner.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            )
        };
        let mut seen = self.seen.lock().expect("tls info lock");
        seen.earliest_expiry = certinfo::earliest_expiry(&certs);
        seen.leaf = certs
            .first()
            .map(|leaf| certinfo::leaf_info(end_entity.as_ref(), leaf));
        // Insecure: nothing was verified, so no verified chain has an expiry.
        seen.chain_expiry = (verdict.is_ok() && !self.insecure)
            .then(|| certinfo::chain_expiry(&certs, &self.anchors))
            .flatten();
        verdict
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
