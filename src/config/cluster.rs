//! The `cluster` section: which etcd coordinates the replicas, how long a
//! leader's lease lives, and where this replica's actuator keeps its fence.

use std::path::Path;

use super::document::Document;
use super::error::ConfigError;
use super::raw::RawCluster;
use super::values::{self, valid_name};
use crate::plan::{ClusterSpec, DEFAULT_LEASE_TTL, LEASE_TTL, MAX_ENDPOINTS};

/// Validates `cluster`; the replica's name defaults to `vantage`.
pub fn cluster(
    doc: &Document,
    raw: &RawCluster,
    dir: &Path,
    vantage: &str,
    errors: &mut Vec<ConfigError>,
) -> ClusterSpec {
    let rule = "valid: 1-64 characters of a-z, A-Z, 0-9, '-', '_' or '.'";
    if !valid_name(&raw.name) {
        errors.push(doc.error_at(
            "cluster.name",
            format!("{:?} is not a valid cluster name; {rule}", raw.name),
        ));
    }
    let replica = raw.replica.clone().unwrap_or_else(|| vantage.to_string());
    if !valid_name(&replica) {
        errors.push(doc.error_at(
            "cluster.replica",
            format!("{replica:?} is not a valid replica name; {rule}"),
        ));
    }
    if raw.etcd.endpoints.is_empty() || raw.etcd.endpoints.len() > MAX_ENDPOINTS {
        errors.push(doc.error_at(
            "cluster.etcd.endpoints",
            format!(
                "{} endpoints; valid: 1 to {MAX_ENDPOINTS} etcd client URLs (3 members on at least 2 sites, reached over the management network)",
                raw.etcd.endpoints.len()
            ),
        ));
    }
    let endpoints: Vec<url::Url> = raw
        .etcd
        .endpoints
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match url::Url::parse(e) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            _ => {
                errors.push(doc.error_at(
                    &format!("cluster.etcd.endpoints[{i}]"),
                    format!("{e:?} is not an etcd client URL; valid: http(s)://host:port, e.g. https://198.18.0.1:2379"),
                ));
                None
            }
        })
        .collect();
    let tls = endpoints.iter().any(|u| u.scheme() == "https");
    if tls && endpoints.iter().any(|u| u.scheme() == "http") {
        errors.push(doc.error_at(
            "cluster.etcd.endpoints",
            "some endpoints are https and some http; valid: all of one scheme",
        ));
    }
    let file = |key: &str, f: &Option<String>, errors: &mut Vec<ConfigError>| {
        let path = dir.join(f.as_ref()?);
        if !path.is_file() {
            errors.push(doc.error_at(
                &format!("cluster.etcd.{key}"),
                format!(
                    "{} is not a readable file; valid: a PEM file",
                    path.display()
                ),
            ));
        }
        Some(path)
    };
    let ca_file = file("ca_file", &raw.etcd.ca_file, errors);
    let cert = file("cert_file", &raw.etcd.cert_file, errors);
    let key = file("key_file", &raw.etcd.key_file, errors);
    if !tls && (ca_file.is_some() || cert.is_some()) {
        errors.push(doc.error_at(
            "cluster.etcd",
            "TLS files are set but the endpoints are http; valid: https endpoints with TLS files",
        ));
    }
    if let Some(k) = &key
        && let Err(e) = super::files::check_secret_mode(k)
    {
        errors.push(doc.error_at(
            "cluster.etcd.key_file",
            format!(
                "{}: {e}; valid: a file only its owner can read (chmod 600)",
                k.display()
            ),
        ));
    }
    let identity = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            errors.push(doc.error_at(
                "cluster.etcd",
                "cert_file and key_file go together; valid: both or neither",
            ));
            None
        }
    };
    let lease_ttl =
        raw.lease_ttl.as_deref().map_or(DEFAULT_LEASE_TTL, |t| {
            match values::duration(doc, "cluster.lease_ttl", t, *LEASE_TTL.end()) {
                Ok(d) if d >= *LEASE_TTL.start() && d.subsec_nanos() == 0 => d,
                Ok(_) => {
                    errors.push(doc.error_at(
                        "cluster.lease_ttl",
                        format!("{t:?} is out of range; valid: whole seconds from 2s to 60s"),
                    ));
                    DEFAULT_LEASE_TTL
                }
                Err(e) => {
                    errors.push(e);
                    DEFAULT_LEASE_TTL
                }
            }
        });
    let actuate = raw.actuate.unwrap_or(true);
    let fence_file = match (&raw.fence_file, actuate) {
        (Some(f), _) => dir.join(f),
        (None, false) => dir.join("fence"),
        (None, true) => {
            errors.push(doc.error_at(
                "cluster",
                "missing `fence_file`; valid: a path where this replica's actuator keeps the highest fence it applied, e.g. /var/lib/gwanje/fence",
            ));
            dir.join("fence")
        }
    };
    ClusterSpec {
        name: raw.name.clone(),
        replica,
        endpoints,
        ca_file,
        identity,
        lease_ttl,
        actuate,
        fence_file,
        fingerprint: String::new(),
        campaign: true,
    }
}
