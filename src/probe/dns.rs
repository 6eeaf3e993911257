//! DNS probe: one query to one server, with rcode and answer checks.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::Record;
use tokio::time::Instant;

use super::outcome::{DnsDetails, Failure};
use crate::core::FailureKind;
use crate::plan::{DnsProtocol, DnsSpec};

/// A DNS probe prepared once per target: its own resolver aimed at one server.
pub struct DnsProbe {
    spec: DnsSpec,
    resolver: Result<hickory_resolver::TokioResolver, NetError>,
}

impl std::fmt::Debug for DnsProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsProbe")
            .field("server", &self.spec.server)
            .finish()
    }
}

impl DnsProbe {
    /// Prepares the probe with a cache-less, single-attempt resolver.
    pub fn new(spec: &DnsSpec, timeout: Duration) -> Self {
        let mut conn = match spec.protocol {
            DnsProtocol::Udp => ConnectionConfig::udp(),
            DnsProtocol::Tcp => ConnectionConfig::tcp(),
        };
        conn.port = spec.server.port();
        conn.bind_addr = spec.source.address.map(|ip| SocketAddr::new(ip, 0));
        let server = NameServerConfig::new(spec.server.ip(), true, vec![conn]);
        let config = ResolverConfig::from_parts(None, vec![], vec![server]);
        let mut builder = hickory_resolver::Resolver::builder_with_config(
            config,
            TokioRuntimeProvider::default(),
        );
        let opts = builder.options_mut();
        opts.cache_size = 0;
        opts.attempts = 1;
        opts.timeout = timeout;
        opts.ndots = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.edns0 = true;
        DnsProbe {
            spec: spec.clone(),
            resolver: builder.build(),
        }
    }

    /// Runs one query.
    pub async fn run(&self, rec: &mut DnsDetails) -> Result<(), Failure> {
        let spec = &self.spec;
        let resolver = self
            .resolver
            .as_ref()
            .map_err(|e| Failure::new(FailureKind::Dns, format!("DNS resolver: {e}")))?;
        let t = Instant::now();
        let result = resolver.lookup(spec.name.as_str(), spec.record_type).await;
        rec.lookup_seconds = t.elapsed().as_secs_f64();
        let (rcode, answers): (ResponseCode, Vec<Record>) = match result {
            Ok(lookup) => (ResponseCode::NoError, lookup.answers().to_vec()),
            Err(NetError::Dns(DnsError::ResponseCode(code))) => (code, vec![]),
            Err(NetError::Dns(DnsError::NoRecordsFound(nr))) => (nr.response_code, vec![]),
            Err(NetError::Timeout) => {
                return Err(Failure::new(
                    FailureKind::Timeout,
                    format!("no answer from {}", spec.server),
                ));
            }
            Err(e) => {
                return Err(Failure::new(
                    FailureKind::Dns,
                    format!("query to {}: {e}", spec.server),
                ));
            }
        };
        let answers: Vec<&Record> = answers
            .iter()
            .filter(|r| r.record_type() == spec.record_type)
            .collect();
        rec.answers = answers.len() as u32;
        if !spec.valid_rcodes.contains(&rcode) {
            return Err(Failure::new(
                FailureKind::Rcode,
                format!("response code {rcode} is not valid"),
            ));
        }
        if answers.len() < spec.min_answers {
            return Err(Failure::new(
                FailureKind::Assertion,
                format!(
                    "{} answers, expected at least {}",
                    answers.len(),
                    spec.min_answers
                ),
            ));
        }
        let data: Vec<String> = answers.iter().map(|r| r.data.to_string()).collect();
        for want in &spec.answers_include {
            if !data
                .iter()
                .any(|d| d.trim_end_matches('.') == want.trim_end_matches('.'))
            {
                return Err(Failure::new(
                    FailureKind::Assertion,
                    format!("no answer equals {want:?}"),
                ));
            }
        }
        for p in &spec.answers_match {
            if !data.iter().any(|d| p.0.is_match(d.as_bytes())) {
                return Err(Failure::new(
                    FailureKind::Assertion,
                    format!("no answer matches {:?}", p.0.as_str()),
                ));
            }
        }
        Ok(())
    }
}
