//! TCP probe: connect, optional TLS, optional send/expect exchange.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::net::{self, SystemResolver};
use super::outcome::{Failure, TcpDetails};
use super::tls::TlsClient;
use crate::core::FailureKind;
use crate::plan::{ExchangeStep, TcpSpec};

/// Bytes an `expect` step reads at most before giving up.
const EXPECT_CAP: usize = 64 * 1024;

/// A TCP probe prepared once per target.
#[derive(Debug)]
pub struct TcpProbe {
    spec: TcpSpec,
    tls: Option<Result<std::sync::Arc<TlsClient>, super::tls::TlsSetupError>>,
}

impl TcpProbe {
    /// Prepares the probe.
    pub fn new(spec: &TcpSpec) -> Self {
        TcpProbe {
            spec: spec.clone(),
            tls: spec.tls.as_ref().map(|t| TlsClient::shared(t, &[])),
        }
    }

    /// Runs one probe, recording what it saw into `rec` as it goes.
    pub async fn run(
        &self,
        resolver: &SystemResolver,
        rec: &mut TcpDetails,
    ) -> Result<(), Failure> {
        let spec = &self.spec;
        let ip = net::resolve_recorded(resolver, &spec.host, &mut rec.lookup).await?[0];
        let tcp = net::connect(SocketAddr::new(ip, spec.port), &spec.source).await?;
        let result = match &self.tls {
            None => exchange(tcp, &spec.exchange).await,
            Some(tls) => {
                let tls = tls
                    .as_ref()
                    .map_err(|e| Failure::new(FailureKind::Tls, e.to_string()))?;
                let (stream, info) = tls.handshake(tcp, &spec.host).await;
                rec.tls = Some(info);
                exchange(stream?, &spec.exchange).await
            }
        };
        // An expect step that read to its end without a match, as
        // blackbox_exporter counts it (a timeout is not a regex failure).
        rec.failed_due_to_regex = matches!(&result, Err(f) if f.kind == FailureKind::Assertion);
        result
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    steps: &[ExchangeStep],
) -> Result<(), Failure> {
    let io_fail = |e: std::io::Error| Failure::new(net::classify_io(&e), format!("exchange: {e}"));
    for (i, step) in steps.iter().enumerate() {
        match step {
            ExchangeStep::Send(bytes) => io.write_all(bytes).await.map_err(io_fail)?,
            ExchangeStep::Expect(pattern) => {
                let mut got = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    if pattern.0.is_match(&got) {
                        break;
                    }
                    if got.len() >= EXPECT_CAP {
                        return Err(Failure::new(
                            FailureKind::Assertion,
                            format!(
                                "step {i}: no match for {:?} in {EXPECT_CAP} bytes",
                                pattern.0.as_str()
                            ),
                        ));
                    }
                    let n = io.read(&mut chunk).await.map_err(io_fail)?;
                    if n == 0 {
                        return Err(Failure::new(
                            FailureKind::Assertion,
                            format!(
                                "step {i}: connection closed before {:?} matched",
                                pattern.0.as_str()
                            ),
                        ));
                    }
                    got.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }
    let _ = io.shutdown().await;
    Ok(())
}
