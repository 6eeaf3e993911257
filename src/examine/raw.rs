//! The examination itself, on one raw ICMP socket bound like the path's
//! probes: a ladder of don't-fragment echo sizes, then a TTL-limited trace
//! with a small and a large packet. Blocking and sequential: at most
//! [`MAX_PACKETS`] packets and a few seconds per examination.

use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

// The adapters' clock: plain monotonic time (this runs on a blocking thread).
use tokio::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};

use crate::core::{Examination, Hop, Rung};
use crate::plan::Source;

/// Payload sizes of the ladder: the IPv4 packets are 28 bytes more, up to
/// a full 1,500-byte frame.
pub const LADDER: [u16; 7] = [64, 512, 1000, 1200, 1300, 1400, 1472];
/// Echoes per ladder size.
const PER_RUNG: u8 = 2;
/// The highest TTL the trace tries.
pub const MAX_TTL: u8 = 8;
/// The most packets one examination sends.
pub const MAX_PACKETS: u32 = LADDER.len() as u32 * PER_RUNG as u32 + MAX_TTL as u32 * 2 + 1;
/// How long each step waits for its answers.
const WAIT: Duration = Duration::from_millis(300);

/// What came back for one echo we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// The destination replied.
    Reply(Ipv4Addr),
    /// A hop said the TTL ran out.
    TimeExceeded(Ipv4Addr),
    /// A hop said "fragmentation needed", with its MTU.
    FragNeeded(Ipv4Addr, u16),
    /// A hop said the destination is unreachable.
    Unreachable(Ipv4Addr),
}

impl Answer {
    fn from(self) -> Ipv4Addr {
        match self {
            Answer::Reply(a)
            | Answer::TimeExceeded(a)
            | Answer::FragNeeded(a, _)
            | Answer::Unreachable(a) => a,
        }
    }
}

/// Examines the path to `destination` that `source` selects; `gateway` is
/// its first hop; the hops are traced when `trace`.
pub fn examine(
    destination: Ipv4Addr,
    gateway: Option<Ipv4Addr>,
    source: &Source,
    trace: bool,
) -> Examination {
    let mut exam = Examination {
        destination: destination.to_string(),
        ..Examination::default()
    };
    let mut probe = match Prober::open(source) {
        Ok(p) => p,
        Err(e) => {
            exam.error = Some(format!(
                "cannot open a raw ICMP socket through the path ({e}); gwanje needs CAP_NET_RAW"
            ));
            return exam;
        }
    };
    // Every echo of a step at once, answers told apart by sequence number:
    // the whole examination takes two or three waits, so a fault that is
    // changing is not measured half before and half after.
    let sizes: Vec<(Ipv4Addr, u16, u8)> = LADDER
        .iter()
        .flat_map(|p| std::iter::repeat_n((destination, *p, 64), PER_RUNG as usize))
        .collect();
    let answers = probe.round(&sizes);
    for (payload, answers) in LADDER.iter().zip(answers.chunks(PER_RUNG as usize)) {
        let received = answers
            .iter()
            .filter(|a| matches!(a, Some(Answer::Reply(_))))
            .count() as u8;
        let refused = answers.iter().find_map(|a| match a {
            Some(Answer::FragNeeded(by, mtu)) if by.is_unspecified() => {
                Some((*mtu, crate::core::LOCAL.to_string()))
            }
            Some(Answer::FragNeeded(by, mtu)) => Some((*mtu, by.to_string())),
            _ => None,
        });
        exam.ladder.push(Rung {
            payload: *payload,
            sent: PER_RUNG,
            received,
            frag_needed: refused.as_ref().map(|(mtu, _)| *mtu),
            refused_by: refused.map(|(_, by)| by),
        });
    }
    if !trace {
        exam.packets = probe.sent;
        return exam;
    }
    let large = exam
        .ladder
        .iter()
        .find(|r| r.received == 0)
        .map_or(LADDER[LADDER.len() - 1], |r| r.payload);
    let ttls: Vec<(Ipv4Addr, u16, u8)> = (1..=MAX_TTL)
        .flat_map(|ttl| [(destination, LADDER[0], ttl), (destination, large, ttl)])
        .collect();
    let mut answers = probe.round(&ttls);
    // A router that cannot forward answers with ICMP errors, which it
    // rate-limits (Linux: one a second), and the checks through it spend
    // that budget; its own address still answers an echo.
    if answers[0].is_none()
        && let Some(gw) = gateway
    {
        answers[0] =
            probe.round(&[(gw, LADDER[0], 64)])[0].filter(|a| matches!(a, Answer::Reply(_)));
    }
    let name = |a: Option<Answer>| a.map(|a| a.from().to_string());
    for (ttl, pair) in (1..=MAX_TTL).zip(answers.chunks(2)) {
        exam.hops.push(Hop {
            ttl,
            small: name(pair[0]),
            large: name(pair[1]),
        });
        // The destination answered, or a hop said it cannot reach it:
        // the higher TTLs only repeat that.
        match pair[0] {
            Some(Answer::Reply(from)) if from == destination => break,
            Some(Answer::Unreachable(_)) => break,
            _ => {}
        }
    }
    exam.packets = probe.sent;
    exam
}

static IDENT: AtomicU16 = AtomicU16::new(0);

struct Prober {
    socket: Socket,
    ident: u16,
    seq: u16,
    sent: u32,
}

impl Prober {
    fn open(source: &Source) -> std::io::Result<Self> {
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
        if let Some(mark) = source.mark {
            socket.set_mark(mark)?;
        }
        if let Some(ifname) = &source.interface {
            socket.bind_device(Some(ifname.as_bytes()))?;
        }
        if let Some(addr) = source.address {
            socket.bind(&SocketAddr::new(addr, 0).into())?;
        }
        // Don't fragment, and send the size asked for even where the kernel
        // has learned a smaller path MTU: the examination is the measurement.
        crate::probe::set_int_option(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_PROBE,
        )?;
        let ident = (std::process::id() as u16)
            .wrapping_mul(31)
            .wrapping_add(IDENT.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37));
        Ok(Prober {
            socket,
            ident,
            seq: 0,
            sent: 0,
        })
    }

    /// Sends one echo per `(destination, payload, ttl)` and waits for their answers.
    fn round(&mut self, echoes: &[(Ipv4Addr, u16, u8)]) -> Vec<Option<Answer>> {
        let mut seqs = Vec::with_capacity(echoes.len());
        let mut refused = Vec::with_capacity(echoes.len());
        for &(destination, payload, ttl) in echoes {
            self.seq = self.seq.wrapping_add(1);
            seqs.push(self.seq);
            let packet = echo_request(self.ident, self.seq, payload);
            let to = SocketAddrV4::new(destination, 0);
            let _ = self.socket.set_ttl_v4(u32::from(ttl));
            let sent = self.socket.send_to(&packet, &to.into());
            self.sent += 1;
            // This host's own interface refuses the size: a local MTU limit,
            // not a loss. Any other refused send is an unanswered echo.
            refused.push(sent.is_err_and(|e| e.raw_os_error() == Some(libc::EMSGSIZE)));
        }
        let mut answers: Vec<Option<Answer>> = refused
            .iter()
            .map(|r| r.then_some(Answer::FragNeeded(Ipv4Addr::UNSPECIFIED, 0)))
            .collect();
        let deadline = Instant::now() + WAIT;
        let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
        while answers.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.socket.set_read_timeout(Some(left)).is_err() {
                break;
            }
            let n = match self.socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            // SAFETY: recv initialised the first n bytes.
            let bytes: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), n) };
            if let Some((seq, answer)) = parse(bytes, self.ident)
                && let Some(i) = seqs.iter().position(|s| *s == seq)
                && answers[i].is_none()
            {
                answers[i] = Some(answer);
            }
        }
        answers
    }
}

fn echo_request(ident: u16, seq: u16, payload: u16) -> Vec<u8> {
    let mut p = vec![0u8; 8 + usize::from(payload)];
    p[0] = 8;
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let sum = checksum(&p);
    p[2..4].copy_from_slice(&sum.to_be_bytes());
    p
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Reads an IPv4 packet carrying ICMP: an answer to our echo `(seq, what)`.
fn parse(ip: &[u8], ident: u16) -> Option<(u16, Answer)> {
    let header = usize::from(ip.first()? & 0x0f) * 4;
    let from = Ipv4Addr::new(*ip.get(12)?, *ip.get(13)?, *ip.get(14)?, *ip.get(15)?);
    let icmp = ip.get(header..)?;
    let (kind, code) = (*icmp.first()?, *icmp.get(1)?);
    let ours = |echo: &[u8]| -> Option<u16> {
        (echo.first() == Some(&8) || echo.first() == Some(&0))
            .then_some(())
            .filter(|_| echo.get(4..6) == Some(&ident.to_be_bytes()[..]))
            .and_then(|_| Some(u16::from_be_bytes([*echo.get(6)?, *echo.get(7)?])))
    };
    match kind {
        0 => Some((ours(icmp)?, Answer::Reply(from))),
        3 | 11 => {
            // The error quotes our packet's IP header and first 8 bytes.
            let inner = icmp.get(8..)?;
            let inner_header = usize::from(inner.first()? & 0x0f) * 4;
            if inner.get(9) != Some(&1) {
                return None;
            }
            let seq = ours(inner.get(inner_header..)?)?;
            let answer = match (kind, code) {
                (11, _) => Answer::TimeExceeded(from),
                (3, 4) => Answer::FragNeeded(from, u16::from_be_bytes([icmp[6], icmp[7]])),
                _ => Answer::Unreachable(from),
            };
            Some((seq, answer))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(from: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
        p.extend_from_slice(&from);
        p.extend_from_slice(&[198, 18, 0, 2]);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn echo_requests_carry_a_valid_checksum() {
        let p = echo_request(0x1234, 7, 64);
        assert_eq!(p.len(), 72);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
    }

    #[test]
    fn answers_are_matched_to_our_echoes_only() {
        let req = echo_request(0x1234, 7, 16);
        let mut reply = req.clone();
        reply[0] = 0;
        assert_eq!(
            parse(&ip([198, 18, 100, 1], &reply), 0x1234),
            Some((7, Answer::Reply(Ipv4Addr::new(198, 18, 100, 1))))
        );
        assert_eq!(parse(&ip([198, 18, 100, 1], &reply), 0x9999), None);
        // A time-exceeded quoting our request.
        let mut quoted = ip([198, 18, 0, 2], &req[..8]);
        quoted[9] = 1;
        let mut err = vec![11, 0, 0, 0, 0, 0, 0, 0];
        err.extend_from_slice(&quoted);
        assert_eq!(
            parse(&ip([198, 18, 1, 1], &err), 0x1234),
            Some((7, Answer::TimeExceeded(Ipv4Addr::new(198, 18, 1, 1))))
        );
        // Fragmentation needed carries the next hop's MTU.
        let mut frag = vec![3, 4, 0, 0, 0, 0, 0x05, 0x78];
        frag.extend_from_slice(&quoted);
        assert_eq!(
            parse(&ip([198, 18, 1, 1], &frag), 0x1234),
            Some((7, Answer::FragNeeded(Ipv4Addr::new(198, 18, 1, 1), 1400)))
        );
    }
}
