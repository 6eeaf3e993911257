//! Probe executors: HTTP(S), TCP, DNS, ICMP and canary identities.
//!
//! A [`Prober`] is prepared once per target (TLS settings, resolvers) and run
//! by the scheduler; each run is bounded by the target's timeout and returns
//! a [`ProbeResult`], never an error.

pub mod body_text;
mod certinfo;
mod dns;
mod http;
mod icmp;
pub mod identity;
mod net;
mod outcome;
pub mod personal_data;
mod tcp;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;

pub use net::set_int_option;
pub use outcome::{
    Details, DnsDetails, DnsPhases, Failure, HttpDetails, HttpPhases, IcmpDetails, IdentityDetails,
    LeafInfo, Lookup, ProbeResult, RttStats, TcpDetails, TlsInfo,
};

use crate::core::FailureKind;
use crate::plan::{ProbeSpec, Target};

/// What all probes share: the system resolver, the ICMP sockets, and
/// gwanje's own listener, which no redirect may lead a probe to.
pub struct ProbeContext {
    resolver: net::SystemResolver,
    icmp: icmp::IcmpSockets,
    own_listener: Option<SocketAddr>,
    /// One request pacer per identity target: its scheduled runs and the
    /// daemon's verifications share `max_requests_per_second`.
    pacers: identity::Pacers,
}

impl ProbeContext {
    /// Builds the shared context from the system's resolver configuration.
    pub fn new() -> std::io::Result<Arc<Self>> {
        Self::guarding(None)
    }

    /// gwanje's own listener, when known.
    pub fn own_listener(&self) -> Option<SocketAddr> {
        self.own_listener
    }

    /// Like [`ProbeContext::new`]; redirects to `own_listener` are refused.
    pub fn guarding(own_listener: Option<SocketAddr>) -> std::io::Result<Arc<Self>> {
        Ok(Arc::new(ProbeContext {
            resolver: net::system_resolver()?,
            icmp: icmp::IcmpSockets::default(),
            own_listener,
            pacers: identity::Pacers::default(),
        }))
    }
}

/// Runs probes for the scheduler: [`NetExecutor`] sends real packets; a
/// test's executor can answer from a model of the world instead.
pub trait Executor: Send + Sync + 'static {
    /// Prepares what probing `job` needs, once per job.
    fn prepare(&self, job: &Arc<crate::plan::Job>) -> Box<dyn Probe>;
}

/// One job's probe, ready to run repeatedly.
pub trait Probe: Send + Sync {
    /// Runs it once (bounded by the target's timeout).
    fn run(&self) -> futures_util::future::BoxFuture<'_, ProbeResult>;
}

/// The executor that probes the network.
pub struct NetExecutor(pub Arc<ProbeContext>);

struct NetProbe {
    prober: Prober,
    ctx: Arc<ProbeContext>,
}

impl Probe for NetProbe {
    fn run(&self) -> futures_util::future::BoxFuture<'_, ProbeResult> {
        // Boxed: the probe's state machine is ~20 KB; inline, every idle
        // target would carry it between runs (100 MB at 5,000 targets).
        Box::pin(self.prober.run(&self.ctx))
    }
}

impl Executor for NetExecutor {
    fn prepare(&self, job: &Arc<crate::plan::Job>) -> Box<dyn Probe> {
        Box::new(NetProbe {
            prober: Prober::new(job.target.clone()),
            ctx: self.0.clone(),
        })
    }
}

#[derive(Debug)]
enum Prepared {
    Http(Box<http::HttpProbe>),
    Tcp(Box<tcp::TcpProbe>),
    Dns(Box<dns::DnsProbe>),
    Icmp,
    Identity(Box<identity::IdentityProbe>),
}

/// One target's probe, ready to run repeatedly.
#[derive(Debug)]
pub struct Prober {
    target: Arc<Target>,
    prepared: Prepared,
}

impl Prober {
    /// Prepares the probe of `target`.
    pub fn new(target: Arc<Target>) -> Self {
        let prepared = match &target.probe {
            ProbeSpec::Http(s) => Prepared::Http(Box::new(http::HttpProbe::new(s))),
            ProbeSpec::Tcp(s) => Prepared::Tcp(Box::new(tcp::TcpProbe::new(s))),
            ProbeSpec::Dns(s) => Prepared::Dns(Box::new(dns::DnsProbe::new(s))),
            ProbeSpec::Icmp(_) => Prepared::Icmp,
            ProbeSpec::Identity(s) => Prepared::Identity(Box::new(identity::IdentityProbe::new(s))),
        };
        Prober { target, prepared }
    }

    /// The target this prober probes.
    pub fn target(&self) -> &Arc<Target> {
        &self.target
    }

    /// Runs the identity flow with `load` instead of the configured one
    /// (`gwanje verify`); `None` when the target is not an identity probe.
    pub async fn verify(
        &self,
        ctx: &ProbeContext,
        load: identity::Load,
    ) -> Option<(Option<Failure>, IdentityDetails)> {
        let Prepared::Identity(p) = &self.prepared else {
            return None;
        };
        let deadline = p.deadline(load, self.target.timeout);
        let pacer = ctx.pacers.of(self.target.key.as_str());
        Some(
            p.run(
                &ctx.resolver,
                &pacer,
                identity::Lane::Verification,
                load,
                deadline,
            )
            .await,
        )
    }

    /// Runs one probe, bounded by the target's timeout.
    pub async fn run(&self, ctx: &ProbeContext) -> ProbeResult {
        let start = Instant::now();
        let timeout = self.target.timeout;
        let (failure, details) = match &self.prepared {
            Prepared::Http(p) => {
                let mut rec = HttpDetails::default();
                let r = bounded(timeout, p.run(&ctx.resolver, ctx.own_listener, &mut rec)).await;
                (r.err(), Details::Http(Box::new(rec)))
            }
            Prepared::Tcp(p) => {
                let mut rec = TcpDetails::default();
                let r = bounded(timeout, p.run(&ctx.resolver, &mut rec)).await;
                (r.err(), Details::Tcp(Box::new(rec)))
            }
            Prepared::Dns(p) => {
                let mut rec = DnsDetails::default();
                let r = bounded(timeout, p.run(&mut rec)).await;
                (r.err(), Details::Dns(rec))
            }
            Prepared::Icmp => {
                let ProbeSpec::Icmp(spec) = &self.target.probe else {
                    unreachable!("prepared kind matches the spec")
                };
                let mut rec = IcmpDetails::default();
                let r = bounded(
                    timeout,
                    icmp::run(spec, &ctx.icmp, &ctx.resolver, timeout, &mut rec),
                )
                .await;
                (r.err(), Details::Icmp(rec))
            }
            Prepared::Identity(p) => {
                let pacer = ctx.pacers.of(self.target.key.as_str());
                let lane = identity::Lane::Scheduled;
                let (failure, rec) = p.run(&ctx.resolver, &pacer, lane, p.load(), timeout).await;
                (failure, Details::Identity(Box::new(rec)))
            }
        };
        ProbeResult {
            duration: start.elapsed(),
            failure,
            details,
        }
    }
}

async fn bounded(
    timeout: std::time::Duration,
    fut: impl std::future::Future<Output = Result<(), Failure>>,
) -> Result<(), Failure> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(Failure::new(
            FailureKind::Timeout,
            format!("no result within {}", humantime::format_duration(timeout)),
        )),
    }
}
