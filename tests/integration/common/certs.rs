//! Certificates generated per test run: a CA, a leaf it signs, an expired
//! leaf and a self-signed one, all for `localhost` and 127.0.0.1.

use std::path::PathBuf;

use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate chain and its key.
pub struct Identity {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// Everything a TLS test needs.
pub struct Certs {
    /// Folder holding `ca.pem`, deleted when dropped.
    _dir: tempfile::TempDir,
    /// The CA certificate file (PEM).
    pub ca_file: PathBuf,
    /// A valid leaf signed by the CA, sent with the CA.
    pub valid: Identity,
    /// The same leaf sent alone: the client completes the chain from its
    /// trust store.
    pub valid_leaf_only: Identity,
    /// A leaf signed by the CA that expired in 2020.
    pub expired: Identity,
    /// A self-signed leaf.
    pub self_signed: Identity,
    /// The valid leaf's notAfter, Unix seconds.
    pub valid_not_after: i64,
    /// The CA's notAfter, Unix seconds (before the leaf's).
    pub ca_not_after: i64,
}

fn leaf_params() -> CertificateParams {
    let mut p = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("leaf params");
    p.distinguished_name.push(DnType::CommonName, "localhost");
    p
}

fn identity(
    cert: rcgen::Certificate,
    key: &KeyPair,
    extra: Option<&CertificateDer<'static>>,
) -> Identity {
    let mut chain = vec![cert.der().clone()];
    chain.extend(extra.cloned());
    Identity {
        chain,
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// Generates a fresh set.
pub fn generate() -> Certs {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gwanje test CA");
    ca_params.not_after = rcgen::date_time_ymd(2034, 12, 31);
    let ca_not_after = ca_params.not_after.unix_timestamp();
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, &ca_key);

    let valid_key = KeyPair::generate().expect("key");
    let mut valid_params = leaf_params();
    valid_params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    valid_params.not_after = rcgen::date_time_ymd(2035, 6, 30);
    let valid_not_after = valid_params.not_after.unix_timestamp();
    let valid = valid_params
        .signed_by(&valid_key, &issuer)
        .expect("valid leaf");

    let expired_key = KeyPair::generate().expect("key");
    let mut expired_params = leaf_params();
    expired_params.not_before = rcgen::date_time_ymd(2019, 1, 1);
    expired_params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    let expired = expired_params
        .signed_by(&expired_key, &issuer)
        .expect("expired leaf");

    let ss_key = KeyPair::generate().expect("key");
    let self_signed = leaf_params().self_signed(&ss_key).expect("self-signed");

    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).expect("write ca");
    Certs {
        ca_file,
        valid_leaf_only: identity(valid.clone(), &valid_key, None),
        valid: identity(valid, &valid_key, Some(ca_cert.der())),
        expired: identity(expired, &expired_key, None),
        self_signed: identity(self_signed, &ss_key, None),
        valid_not_after,
        ca_not_after,
        _dir: dir,
    }
}
