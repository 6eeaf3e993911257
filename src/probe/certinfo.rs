//! What a presented certificate chain tells a dashboard: expiries and the
//! leaf's identity, spelled the way blackbox_exporter (Go's crypto/x509)
//! spells them, so `probe_ssl_last_chain_info` labels match series for series.

use std::collections::HashMap;

use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::x509::X509Name;

use super::outcome::LeafInfo;

/// Trust anchors' `notAfter` by their subject (raw DER), so the verified
/// chain's expiry can include the root the server did not send.
pub type AnchorExpiry = HashMap<Vec<u8>, i64>;

/// Adds the certificates in `ders` to `anchors`.
pub fn add_anchors<'a>(anchors: &mut AnchorExpiry, ders: impl IntoIterator<Item = &'a [u8]>) {
    for der in ders {
        if let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) {
            anchors.insert(
                cert.subject().as_raw().to_vec(),
                cert.validity().not_after.timestamp(),
            );
        }
    }
}

/// Earliest `notAfter` among `certs`, Unix seconds.
pub fn earliest_expiry(certs: &[X509Certificate<'_>]) -> Option<i64> {
    certs
        .iter()
        .map(|c| c.validity().not_after.timestamp())
        .min()
}

/// The verified chain's expiry: the presented certificates' earliest
/// `notAfter`, and the anchor's that signed the last of them.
pub fn chain_expiry(certs: &[X509Certificate<'_>], anchors: &AnchorExpiry) -> Option<i64> {
    let last = certs.last()?;
    let anchor = anchors.get(last.issuer().as_raw()).copied();
    earliest_expiry(certs).into_iter().chain(anchor).min()
}

/// Parses the chain, skipping what does not parse.
pub fn parse<'a>(ders: &'a [CertificateDer<'a>]) -> Vec<X509Certificate<'a>> {
    ders.iter()
        .filter_map(|d| x509_parser::parse_x509_certificate(d.as_ref()).ok())
        .map(|(_, c)| c)
        .collect()
}

/// The leaf's identity as `probe_ssl_last_chain_info` labels it.
pub fn leaf_info(der: &[u8], cert: &X509Certificate<'_>) -> LeafInfo {
    let sans = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some(*d),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    // A probed server chooses these names: control characters in them are
    // escaped before they reach a label, a log line or a terminal.
    let safe = |s: String| crate::logging::escape(&s).to_string();
    LeafInfo {
        fingerprint_sha256: hex(&Sha256::digest(der)),
        subject: safe(go_name(cert.subject())),
        issuer: safe(go_name(cert.issuer())),
        subject_alternative: safe(sans),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The attributes Go parses into named fields, in the order its
/// `pkix.Name.ToRDNSequence` emits them: (OID arc under 2.5.4, short name).
const NAMED: [(u64, &str); 9] = [
    (6, "C"),
    (8, "ST"),
    (7, "L"),
    (9, "STREET"),
    (17, "POSTALCODE"),
    (10, "O"),
    (11, "OU"),
    (3, "CN"),
    (5, "SERIALNUMBER"),
];

/// `pkix.Name.String()`: named attributes grouped by type in Go's order,
/// others first, the whole sequence printed last RDN first, RFC 4514 escaping.
fn go_name(name: &X509Name<'_>) -> String {
    let mut other: Vec<String> = Vec::new();
    let mut named: Vec<Vec<String>> = vec![Vec::new(); NAMED.len()];
    for atv in name.iter_attributes() {
        let arcs: Vec<u64> = atv
            .attr_type()
            .iter()
            .map(|it| it.collect())
            .unwrap_or_default();
        let slot = match arcs.as_slice() {
            [2, 5, 4, arc] => NAMED.iter().position(|(a, _)| a == arc),
            _ => None,
        };
        match (slot, atv.as_str()) {
            (Some(i), Ok(v)) => named[i].push(format!("{}={}", NAMED[i].1, escape(v))),
            _ => {
                let value = atv.attr_value();
                other.push(format!(
                    "{}=#{}",
                    atv.attr_type().to_id_string(),
                    hex(&der_tlv(value.tag().0, value.data))
                ));
            }
        }
    }
    let mut rdns: Vec<String> = other;
    rdns.extend(
        named
            .into_iter()
            .filter(|g| !g.is_empty())
            .map(|g| g.join("+")),
    );
    rdns.reverse();
    rdns.join(",")
}

fn escape(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(value.len());
    for (k, c) in value.chars().enumerate() {
        let esc = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k == last,
            '#' => k == 0,
            _ => false,
        };
        if esc {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A universal-class DER element: what Go prints after `#`.
fn der_tlv(tag: u32, data: &[u8]) -> Vec<u8> {
    let mut out = vec![tag as u8];
    let n = data.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len = n.to_be_bytes();
        let skip = len.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (len.len() - skip) as u8);
        out.extend_from_slice(&len[skip..]);
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_rfc_4514_and_go_do() {
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape(" x "), "\\ x\\ ");
        assert_eq!(escape("#1#"), "\\#1#");
        assert_eq!(escape("Test Org"), "Test Org");
    }

    #[test]
    fn control_characters_in_a_servers_names_never_reach_a_label() {
        let mut params = rcgen::CertificateParams::new(vec!["a.localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "evil\r\u{1b}[2Jname");
        params.subject_alt_names.push(rcgen::SanType::DnsName(
            rcgen::string::Ia5String::try_from("b\nc.localhost").unwrap(),
        ));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = cert.der().to_vec();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        let info = leaf_info(&der, &parsed);
        for text in [&info.subject, &info.issuer, &info.subject_alternative] {
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
        assert!(
            info.subject.contains("evil") && info.subject.contains("\\u{1b}"),
            "{}",
            info.subject
        );
        assert!(info.subject_alternative.contains("a.localhost"));
    }

    #[test]
    fn long_der_lengths_use_the_long_form() {
        assert_eq!(der_tlv(12, b"ab"), vec![12, 2, b'a', b'b']);
        let long = der_tlv(12, &[0; 200]);
        assert_eq!(&long[..3], &[12, 0x81, 200]);
    }
}
