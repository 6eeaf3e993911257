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
use super::outcome::{Failure, IcmpDetails, RttStats};
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
    confirmations: ConfirmBudget,
}

/// Confirmation echoes per destination and path (fwmark) per second, at
/// most: a stream of fast probes through a dead or lossy path never
/// exceeds its own rate plus this.
pub const CONFIRM_PER_SECOND: f64 = 30.0;

/// A destination through a path (the socket's binding and mark).
type Route = (IpAddr, SocketKey);

/// Buckets kept before idle ones are dropped (names can resolve to many addresses).
const MAX_BUCKETS: usize = 4096;

/// A token bucket per destination and path for confirmation bursts:
/// (tokens, when last refilled).
#[derive(Default)]
struct ConfirmBudget {
    buckets: Mutex<HashMap<Route, (f64, Instant)>>,
}

impl ConfirmBudget {
    /// Takes `n` tokens for `route` if it has them (at most one second's
    /// worth stored).
    fn take(&self, route: Route, n: u16) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("confirm budget lock");
        if buckets.len() >= MAX_BUCKETS {
            // A bucket idle for a second is full again: forgetting it is free.
            buckets.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(1));
        }
        let (tokens, at) = buckets.entry(route).or_insert((CONFIRM_PER_SECOND, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * CONFIRM_PER_SECOND)
            .min(CONFIRM_PER_SECOND);
        *at = now;
        let need = f64::from(n);
        let granted = *tokens >= need;
        if granted {
            *tokens -= need;
        }
        granted
    }
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
            net::set_int_option(
                client.get_socket().get_native_sock(),
                libc::SOL_SOCKET,
                libc::SO_MARK,
                mark as libc::c_int,
            )
            .map_err(|e| {
                Failure::new(net::classify_io(&e), format!("setting fwmark {mark}: {e}"))
            })?;
        }
        if key.dont_fragment && !key.v6 {
            net::set_int_option(
                client.get_socket().get_native_sock(),
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

/// Sequence numbers unique across concurrent pings on a shared socket.
static NEXT_SEQ: AtomicU16 = AtomicU16::new(1);

/// When to stop collecting replies.
#[derive(Clone, Copy)]
struct Window {
    /// When the first echo is sent.
    first: Instant,
    /// Between echoes.
    gap: Duration,
    /// No reply counts after this.
    until: Instant,
    /// Stop at the first reply (a confirmation needs only one).
    first_reply: bool,
}

/// One echo's reply.
struct Reply {
    /// Which echo of the probe (0 = the first sent).
    index: u16,
    /// Round-trip time, seconds.
    rtt: f64,
    /// The reply's IP TTL, when the socket shows the header.
    ttl: Option<u8>,
}

/// Sends `count` echoes in `window` and collects the replies, in arrival
/// order, and the last error other than a timeout.
async fn echoes(
    client: &Client,
    ip: IpAddr,
    payload: &[u8],
    count: u16,
    window: Window,
) -> (Vec<Reply>, Option<SurgeError>) {
    let Window {
        first,
        gap,
        until,
        first_reply,
    } = window;
    let mut pings = JoinSet::new();
    for i in 0..count {
        let client = client.clone();
        let payload = payload.to_vec();
        let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        let send_at = first + gap * u32::from(i);
        let wait = until
            .saturating_duration_since(send_at)
            .max(Duration::from_millis(1));
        pings.spawn(async move {
            tokio::time::sleep_until(send_at).await;
            let mut pinger = client.pinger(ip, PingIdentifier(seq)).await;
            pinger.timeout(wait);
            (i, pinger.ping(PingSequence(seq), &payload).await)
        });
    }
    let mut replies = Vec::new();
    let mut last_error = None;
    while let Some(joined) = pings.join_next().await {
        match joined {
            Ok((index, Ok((packet, rtt)))) => {
                let ttl = match packet {
                    surge_ping::IcmpPacket::V4(p) => p.get_ttl(),
                    // ICMPv6 sockets do not show the IPv6 header.
                    surge_ping::IcmpPacket::V6(_) => None,
                };
                replies.push(Reply {
                    index,
                    rtt: rtt.as_secs_f64(),
                    ttl,
                });
                // Dropping the set cancels the echoes still waiting.
                if first_reply {
                    break;
                }
            }
            Ok((_, Err(SurgeError::Timeout { .. }))) => {}
            Ok((_, Err(e))) => last_error = Some(e),
            Err(e) => last_error = Some(SurgeError::IOError(std::io::Error::other(e))),
        }
    }
    (replies, last_error)
}

/// Runs one ICMP probe within `timeout`.
pub async fn run(
    spec: &IcmpSpec,
    sockets: &IcmpSockets,
    resolver: &SystemResolver,
    timeout: Duration,
    rec: &mut IcmpDetails,
) -> Result<(), Failure> {
    let start = Instant::now();
    let ip = net::resolve_recorded(resolver, &spec.host, &mut rec.lookup).await?[0];
    let socket = key(ip, &spec.source, spec.dont_fragment);
    let t = Instant::now();
    let client = sockets.client(socket.clone());
    rec.setup_seconds = t.elapsed().as_secs_f64();
    let client = client?;
    let payload = vec![0x5a; spec.payload_size];
    // With confirmation, the first echoes get the first half of the time,
    // so a burst can follow within the probe's timeout.
    let share = if spec.confirm > 0 { 0.45 } else { 0.9 };
    let collect_until = start + timeout.mul_f64(share);
    let gap =
        (timeout.mul_f64(share) / (4 * u32::from(spec.packets))).min(Duration::from_millis(20));
    rec.sent = spec.packets;
    let window = Window {
        first: start,
        gap,
        until: collect_until,
        first_reply: false,
    };
    let (replies, last_error) = echoes(&client, ip, &payload, spec.packets, window).await;
    rec.received = replies.len() as u16;
    let rtts: Vec<f64> = replies.iter().map(|r| r.rtt).collect();
    rec.rtt = RttStats::of(&rtts);
    rec.rtt_seconds = rec.rtt.map(|s| s.avg);
    if let Some(first) = replies.iter().min_by_key(|r| r.index) {
        rec.first_rtt = Some(first.rtt);
        rec.reply_hop_limit = first.ttl;
    }
    if rec.loss_ratio() > spec.max_loss
        && spec.confirm > 0
        && sockets.confirmations.take((ip, socket), spec.confirm)
    {
        // The first echoes stay what the path's loss is judged on; the
        // burst only decides whether this probe failed.
        let burst = Window {
            first: Instant::now(),
            gap: Duration::from_millis(1),
            until: start + timeout.mul_f64(0.9),
            first_reply: true,
        };
        let (replies, _) = echoes(&client, ip, &payload, spec.confirm, burst).await;
        rec.confirmed = Some(!replies.is_empty());
        if !replies.is_empty() {
            return Ok(());
        }
    }
    if let Some(SurgeError::IOError(e)) = &last_error
        && rtts.is_empty()
    {
        return Err(Failure::new(net::classify_io(e), format!("ping {ip}: {e}")));
    }
    let loss = rec.loss_ratio();
    if loss > spec.max_loss {
        let mut why = last_error
            .map(|e| format!(" (last error: {e})"))
            .unwrap_or_default();
        if rec.confirmed == Some(false) {
            why.push_str(&format!(
                "; none of {} confirmation echoes answered",
                spec.confirm
            ));
        }
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
