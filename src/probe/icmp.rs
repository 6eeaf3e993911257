//! ICMP echo probe: N requests per probe, loss judged against a threshold,
//! payload size and don't-fragment configurable.
//!
//! A raw socket is used when allowed (root or CAP_NET_RAW), else the
//! unprivileged ICMP datagram socket (net.ipv4.ping_group_range). Sockets are
//! shared by every target with the same source and options.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, SurgeError};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::net::{self, SystemResolver};
use super::outcome::{Failure, IcmpDetails};
use crate::core::FailureKind;
use crate::plan::{IcmpSpec, Source};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SocketKey {
    v6: bool,
    source: Option<IpAddr>,
    interface: Option<String>,
    mark: Option<u32>,
    dont_fragment: bool,
}

/// ICMP sockets shared across targets, keyed by their options.
#[derive(Default)]
pub struct IcmpSockets {
    clients: Mutex<HashMap<SocketKey, Client>>,
}

impl IcmpSockets {
    fn client(&self, key: SocketKey) -> Result<Client, Failure> {
        let mut clients = self.clients.lock().expect("icmp client lock");
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let mut b = Config::builder()
            .kind(if key.v6 { ICMP::V6 } else { ICMP::V4 })
            .sock_type_hint(socket2::Type::RAW);
        if let Some(ip) = key.source {
            b = b.bind(SocketAddr::new(ip, 0));
        }
        if let Some(ifname) = &key.interface {
            b = b.interface(ifname);
        }
        let client = Client::new(&b.build()).map_err(|e| {
            let kind = net::classify_io(&e);
            let detail = if kind == FailureKind::Permission {
                format!("cannot open an ICMP socket ({e}): run as root or with CAP_NET_RAW, or allow unprivileged ping with sysctl net.ipv4.ping_group_range")
            } else {
                format!("cannot open an ICMP socket: {e}")
            };
            Failure::new(kind, detail)
        })?;
        if let Some(mark) = key.mark {
            set_int_option(
                &client,
                libc::SOL_SOCKET,
                libc::SO_MARK,
                mark as libc::c_int,
            )
            .map_err(|e| {
                Failure::new(net::classify_io(&e), format!("setting fwmark {mark}: {e}"))
            })?;
        }
        if key.dont_fragment && !key.v6 {
            set_int_option(
                &client,
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                libc::IP_PMTUDISC_DO,
            )
            .map_err(|e| {
                Failure::new(FailureKind::Connect, format!("setting don't-fragment: {e}"))
            })?;
        }
        clients.insert(key, client.clone());
        Ok(client)
    }
}

fn set_int_option(
    client: &Client,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> std::io::Result<()> {
    let fd = client.get_socket().get_native_sock();
    // SAFETY: fd is the client's open socket, and the option value is a c_int
    // living for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sequence numbers unique across concurrent pings on a shared socket.
static NEXT_SEQ: AtomicU16 = AtomicU16::new(1);

/// Runs one ICMP probe within `timeout`.
pub async fn run(
    spec: &IcmpSpec,
    sockets: &IcmpSockets,
    resolver: &SystemResolver,
    timeout: Duration,
    rec: &mut IcmpDetails,
) -> Result<(), Failure> {
    let start = Instant::now();
    let ip = net::resolve(resolver, &spec.host).await?[0];
    let client = sockets.client(key(ip, &spec.source, spec.dont_fragment))?;
    let payload = vec![0x5a; spec.payload_size];
    // Replies are collected until a tenth of the timeout before it ends, so a
    // lost echo is counted as loss instead of the whole probe timing out.
    let collect_until = start + timeout.mul_f64(0.9);
    // Spread the requests a little so one dropped burst does not look like loss.
    let gap = (timeout / (4 * u32::from(spec.packets))).min(Duration::from_millis(20));
    let mut pings = JoinSet::new();
    for i in 0..spec.packets {
        let client = client.clone();
        let payload = payload.clone();
        let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        let send_at = start + gap * u32::from(i);
        let wait = collect_until
            .saturating_duration_since(send_at)
            .max(Duration::from_millis(1));
        pings.spawn(async move {
            tokio::time::sleep_until(send_at).await;
            let mut pinger = client.pinger(ip, PingIdentifier(seq)).await;
            pinger.timeout(wait);
            pinger.ping(PingSequence(seq), &payload).await
        });
    }
    let mut rtts = Vec::new();
    let mut last_error = None;
    rec.sent = spec.packets;
    while let Some(joined) = pings.join_next().await {
        match joined {
            Ok(Ok((_, rtt))) => rtts.push(rtt.as_secs_f64()),
            Ok(Err(SurgeError::Timeout { .. })) => {}
            Ok(Err(e)) => last_error = Some(e),
            Err(e) => last_error = Some(SurgeError::IOError(std::io::Error::other(e))),
        }
    }
    rec.received = rtts.len() as u16;
    if !rtts.is_empty() {
        rec.rtt_seconds = Some(rtts.iter().sum::<f64>() / rtts.len() as f64);
    }
    if let Some(SurgeError::IOError(e)) = &last_error
        && rtts.is_empty()
    {
        return Err(Failure::new(net::classify_io(e), format!("ping {ip}: {e}")));
    }
    let loss = rec.loss_ratio();
    if loss > spec.max_loss {
        let why = last_error
            .map(|e| format!(" (last error: {e})"))
            .unwrap_or_default();
        return Err(Failure::new(
            FailureKind::Loss,
            format!(
                "{}/{} replies from {ip} ({:.0}% loss, max {:.0}%){why}",
                rec.received,
                rec.sent,
                loss * 100.0,
                spec.max_loss * 100.0
            ),
        ));
    }
    Ok(())
}

fn key(ip: IpAddr, source: &Source, dont_fragment: bool) -> SocketKey {
    SocketKey {
        v6: ip.is_ipv6(),
        source: source.address,
        interface: source.interface.clone(),
        mark: source.mark,
        dont_fragment,
    }
}
