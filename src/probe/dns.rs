//! DNS probe: one query to one server, with rcode and answer checks.

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{RData, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::net;
use super::outcome::{DnsDetails, Failure, Lookup};
use crate::core::FailureKind;
use crate::plan::{DnsProtocol, DnsSpec};

/// The largest response read, UDP or TCP (a DNS message's own limit).
const MAX_MESSAGE: usize = 65_535;

/// A DNS probe prepared once per target: one query, built once, to one server.
///
/// It speaks the wire protocol itself rather than through a resolver, so
/// every section of the response is counted and the connect and request
/// phases are timed apart, as blackbox_exporter reports them. The query is
/// the one blackbox_exporter sends: recursion desired, no EDNS.
#[derive(Debug)]
pub struct DnsProbe {
    spec: DnsSpec,
    query: Query,
}

impl DnsProbe {
    /// Prepares the probe.
    pub fn new(spec: &DnsSpec) -> Self {
        DnsProbe {
            spec: spec.clone(),
            query: Query::query(spec.name.clone(), spec.record_type),
        }
    }

    /// Runs one query, recording what it saw into `rec` as it goes.
    pub async fn run(&self, rec: &mut DnsDetails) -> Result<(), Failure> {
        let spec = &self.spec;
        // The server is an address: its "resolution" is immediate.
        rec.lookup = Some(Lookup {
            seconds: 0.0,
            ip: Some(spec.server.ip()),
        });
        let mut msg = Message::query();
        msg.metadata.recursion_desired = true;
        msg.add_query(self.query.clone());
        let id = msg.metadata.id;
        let wire = msg
            .to_vec()
            .map_err(|e| Failure::new(FailureKind::Dns, format!("encoding the query: {e}")))?;
        let response = self.exchange(&wire, id, rec).await?;
        rec.query_succeeded = true;
        rec.answers = response.answers.len() as u32;
        rec.authority = response.authorities.len() as u32;
        // blackbox_exporter's DNS library keeps the OPT pseudo-record here too.
        rec.additional = (response.additionals.len() + usize::from(response.edns.is_some())) as u32;
        rec.serial = response.answers.iter().rev().find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        });
        let rcode = response.metadata.response_code;
        let answers: Vec<Record> = response.answers;
        let answers: Vec<&Record> = answers
            .iter()
            .filter(|r| r.record_type() == spec.record_type)
            .collect();
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

    /// Sends `wire` and returns the response with `id`, timing the phases.
    async fn exchange(
        &self,
        wire: &[u8],
        id: u16,
        rec: &mut DnsDetails,
    ) -> Result<Message, Failure> {
        let spec = &self.spec;
        let server = spec.server;
        let io_fail = |e: std::io::Error| {
            Failure::new(net::classify_io(&e), format!("query to {server}: {e}"))
        };
        let decode = |buf: &[u8]| {
            Message::from_vec(buf)
                .map_err(|e| Failure::new(FailureKind::Dns, format!("response from {server}: {e}")))
        };
        let t = Instant::now();
        match spec.protocol {
            DnsProtocol::Udp => {
                let sock = net::udp(server, &spec.source).await;
                rec.phases.connect = t.elapsed().as_secs_f64();
                let sock = sock?;
                let t = Instant::now();
                sock.send(wire).await.map_err(io_fail)?;
                let mut buf = vec![0u8; MAX_MESSAGE];
                // A stray datagram with another id is not the answer: keep
                // waiting (the probe's timeout bounds this).
                loop {
                    let n = sock.recv(&mut buf).await.map_err(io_fail);
                    rec.phases.request = t.elapsed().as_secs_f64();
                    let msg = decode(&buf[..n?]);
                    if let Ok(m) = &msg
                        && m.metadata.id != id
                    {
                        continue;
                    }
                    return msg;
                }
            }
            DnsProtocol::Tcp => {
                let conn = net::connect(server, &spec.source).await;
                rec.phases.connect = t.elapsed().as_secs_f64();
                let mut conn = conn?;
                let t = Instant::now();
                let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(wire);
                let result = async {
                    conn.write_all(&framed).await?;
                    let len = conn.read_u16().await?;
                    let mut buf = vec![0u8; usize::from(len)];
                    conn.read_exact(&mut buf).await?;
                    Ok(buf)
                }
                .await;
                rec.phases.request = t.elapsed().as_secs_f64();
                decode(&result.map_err(io_fail)?)
            }
        }
    }
}
