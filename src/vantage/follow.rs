//! Following a peer: one task per peer reads its observation stream,
//! checks every line, and hands the results to the engine, which journals
//! them and feeds them to the core. A faulty stream (wrong token, TLS
//! failure, garbage, an oversized line, a stall, a sequence that goes back
//! mid-stream, another vantage's name) is counted, logged and dropped;
//! nothing from it votes. Reconnects back off up to [`MAX_BACKOFF`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::hub::HEARTBEAT;
use super::wire::{self, LineError, MAX_LINE, Received};
use crate::core::{Observation, VantageName};
use crate::metrics::Metrics;
use crate::plan::PeerSpec;

/// The longest wait between reconnections.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The first wait after a fault.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// A stream silent this long (no line, no heartbeat) is stalled.
pub const STALL: Duration = Duration::from_secs(5 * HEARTBEAT.as_secs());
/// The longest a request may take to answer with its headers.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest token file read.
const MAX_TOKEN_BYTES: u64 = 4096;
/// The most results handed to the engine at once (its queue holds 256 parts).
const PART: usize = 1024;
/// The most lines one read of the stream may inflate to (a sender flushes
/// every 1,024 lines: this is many flushes in one read).
const MAX_LINES_PER_READ: usize = 16_384;

/// What a follower hands the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum FromPeer {
    /// A checked result.
    Result {
        /// The vantage.
        vantage: VantageName,
        /// Its number in the vantage's stream.
        seq: u64,
        /// Whether it is a control of the vantage.
        control: bool,
        /// What was seen.
        observation: Observation,
    },
    /// The vantage's numbering went back: it restarted without its journal.
    Restarted {
        /// The vantage.
        vantage: VantageName,
    },
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum Fault {
    #[error(
        "the peer refused the token (HTTP {0}); check the peer's observer token and token_file"
    )]
    Unauthorized(u16),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("{0}")]
    Line(#[from] LineError),
    #[error("its sequence went back from {last} to {got} within a stream")]
    Sequence { last: u64, got: u64 },
    #[error("silent for {} s (no line, no heartbeat)", STALL.as_secs())]
    Stalled,
    #[error("the stream ended")]
    Ended,
    #[error("the engine stopped")]
    Closed,
}

impl Fault {
    fn reason(&self) -> Option<&'static str> {
        Some(match self {
            Fault::Unauthorized(_) => "unauthorized",
            Fault::Tls(_) => "tls",
            Fault::Connect(_) => "connect",
            Fault::Line(e) => e.reason(),
            Fault::Sequence { .. } => "sequence",
            Fault::Stalled => "stalled",
            Fault::Ended | Fault::Closed => return None,
        })
    }
}

/// Follows `peer` from after `seq` until the engine stops taking results
/// (handed over a chunk at a time).
pub async fn follow(
    peer: PeerSpec,
    mut seq: u64,
    tx: mpsc::Sender<Vec<FromPeer>>,
    metrics: Arc<Metrics>,
) {
    let name = peer.name.as_str().to_string();
    let m = &metrics.vantages;
    for reason in crate::metrics::REJECT_REASONS {
        m.peer_rejected.with_label_values(&[&name, reason]);
    }
    m.peer_results.with_label_values(&[&name]);
    m.peer_bytes.with_label_values(&[&name]);
    let mut backoff = FIRST_BACKOFF;
    // With no result yet, ask from the stream's present, not its whole history.
    let mut resume = (seq > 0).then_some(seq);
    loop {
        let mut delivered = false;
        let fault = session(&peer, &mut resume, &mut seq, &mut delivered, &tx, &metrics).await;
        m.peer_connected.with_label_values(&[&name]).set(0);
        if matches!(fault, Fault::Closed) {
            return;
        }
        if let Some(reason) = fault.reason() {
            m.peer_rejected.with_label_values(&[&name, reason]).inc();
            tracing::warn!(peer = ?name, url = %peer.url, reason, "peer stream: {fault}; reconnecting in {} ms", backoff.as_millis());
        } else {
            tracing::debug!(peer = ?name, "peer stream: {fault}; resuming after {seq}");
        }
        // Only a stream that ended cleanly after delivering earns a quick
        // return: a peer that faults after a line or two backs off all the same.
        let clean = delivered && fault.reason().is_none();
        if clean {
            backoff = FIRST_BACKOFF;
        } else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// One connection: reads until it ends or faults.
async fn session(
    peer: &PeerSpec,
    resume: &mut Option<u64>,
    seq: &mut u64,
    delivered: &mut bool,
    tx: &mpsc::Sender<Vec<FromPeer>>,
    metrics: &Metrics,
) -> Fault {
    let name = peer.name.as_str();
    let m = &metrics.vantages;
    let client = match client(peer) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let token = match crate::config::read_secret_file(&peer.token_file, MAX_TOKEN_BYTES) {
        Ok(t) => t.trim().to_string(),
        Err(e) => {
            return Fault::Connect(format!(
                "cannot read the token file {}: {e}",
                peer.token_file.display()
            ));
        }
    };
    let mut url = peer.url.clone();
    url.set_path(&format!(
        "{}/api/v1/observations",
        url.path().trim_end_matches('/')
    ));
    if let Some(after) = resume {
        url.set_query(Some(&format!("after={after}")));
    }
    let request = client
        .get(url)
        .bearer_auth(token)
        .header(http::header::ACCEPT_ENCODING, "zstd")
        .send();
    let mut response = match tokio::time::timeout(ANSWER_TIMEOUT, request).await {
        Err(_) => return Fault::Connect("no answer within 10 s".into()),
        Ok(Err(e)) => return classify(&e),
        Ok(Ok(r)) => r,
    };
    match response.status().as_u16() {
        200 => {}
        401 | 403 => return Fault::Unauthorized(response.status().as_u16()),
        410 => {
            // What we missed is gone: follow from the present.
            *resume = None;
            return Fault::Connect(
                "what followed our last result is no longer held (410); following from now".into(),
            );
        }
        s => return Fault::Connect(format!("HTTP {s}")),
    }
    let zstd = response
        .headers()
        .get(http::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() == b"zstd");
    let mut decoder = match zstd.then(zstd::stream::raw::Decoder::new).transpose() {
        Ok(d) => d,
        Err(e) => return Fault::Connect(format!("zstd: {e}")),
    };
    if let Some(d) = &mut decoder {
        // Bounds the window a hostile peer can make us hold.
        let _ = d.set_parameter(zstd::stream::raw::DParameter::WindowLogMax(20));
    }
    m.peer_connected.with_label_values(&[name]).set(1);
    let mut pending: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        let chunk = match tokio::time::timeout(STALL, response.chunk()).await {
            Err(_) => return Fault::Stalled,
            Ok(Err(e)) => return classify(&e),
            Ok(Ok(None)) => return Fault::Ended,
            Ok(Ok(Some(c))) => c,
        };
        m.peer_bytes
            .with_label_values(&[name])
            .inc_by(chunk.len() as u64);
        let mut lines = Vec::new();
        let split = match &mut decoder {
            Some(d) => inflate(d, &chunk, &mut pending, &mut lines),
            None => {
                pending.extend_from_slice(&chunk);
                take_lines(&mut pending, &mut lines)
            }
        };
        if let Err(e) = split {
            return e;
        }
        let mut batch = Vec::with_capacity(lines.len());
        let fault = take(
            peer, &lines, seq, resume, delivered, &mut first, &mut batch, metrics,
        );
        // What came before a fault in the chunk was checked and counts; the
        // engine gets it in parts, so what waits for it stays bounded.
        while !batch.is_empty() {
            let rest = batch.split_off(batch.len().min(PART));
            if tx.send(std::mem::replace(&mut batch, rest)).await.is_err() {
                return Fault::Closed;
            }
        }
        if let Some(f) = fault {
            return f;
        }
    }
}

/// Checks a chunk's lines in order into `batch`; the first fault stops it.
#[allow(clippy::too_many_arguments)]
fn take(
    peer: &PeerSpec,
    lines: &[Vec<u8>],
    seq: &mut u64,
    resume: &mut Option<u64>,
    delivered: &mut bool,
    first: &mut bool,
    batch: &mut Vec<FromPeer>,
    metrics: &Metrics,
) -> Option<Fault> {
    let name = peer.name.as_str();
    let m = &metrics.vantages;
    for line in lines {
        match wire::parse(line, name) {
            Err(e) => return Some(e.into()),
            Ok(Received::Heartbeat { .. }) => {}
            Ok(Received::Result {
                seq: got,
                control,
                observation,
            }) => {
                if got <= *seq && *seq > 0 {
                    if !*first {
                        return Some(Fault::Sequence { last: *seq, got });
                    }
                    tracing::warn!(peer = ?name, last = *seq, got, "peer stream: its numbering went back (restarted without its journal); what it said before is forgotten");
                    m.peer_rejected.with_label_values(&[name, "sequence"]).inc();
                    batch.push(FromPeer::Restarted {
                        vantage: peer.name.clone(),
                    });
                }
                *first = false;
                *seq = got;
                *resume = Some(got);
                *delivered = true;
                m.peer_results.with_label_values(&[name]).inc();
                batch.push(FromPeer::Result {
                    vantage: peer.name.clone(),
                    seq: got,
                    control,
                    observation,
                });
            }
        }
    }
    None
}

/// Moves every whole line out of `pending`; a partial line longer than
/// [`MAX_LINE`] is a fault (a stream with no newline must not grow memory).
fn take_lines(pending: &mut Vec<u8>, lines: &mut Vec<Vec<u8>>) -> Result<(), Fault> {
    let mut start = 0;
    while let Some(n) = pending[start..].iter().position(|b| *b == b'\n') {
        let line = &pending[start..start + n];
        if line.len() > MAX_LINE {
            return Err(LineError::Oversized.into());
        }
        if !line.is_empty() {
            lines.push(line.to_vec());
        }
        start += n + 1;
    }
    pending.drain(..start);
    if pending.len() > MAX_LINE {
        return Err(LineError::Oversized.into());
    }
    Ok(())
}

/// Decompresses `chunk` a bounded piece at a time, so a small chunk that
/// inflates to gigabytes never does so in memory.
fn inflate(
    d: &mut zstd::stream::raw::Decoder<'static>,
    chunk: &[u8],
    pending: &mut Vec<u8>,
    lines: &mut Vec<Vec<u8>>,
) -> Result<(), Fault> {
    use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
    let mut input = InBuffer::around(chunk);
    let mut out = vec![0u8; 64 * 1024];
    loop {
        let mut output = OutBuffer::around(&mut out[..]);
        d.run(&mut input, &mut output)
            .map_err(|e| Fault::Line(LineError::Garbage(format!("zstd: {e}"))))?;
        let n = output.pos();
        pending.extend_from_slice(&out[..n]);
        take_lines(pending, lines)?;
        if lines.len() > MAX_LINES_PER_READ {
            return Err(LineError::Garbage("too many lines in one chunk".into()).into());
        }
        if input.pos() == chunk.len() && n < out.len() {
            return Ok(());
        }
    }
}

/// The HTTP client for `peer`: its CA when given, else the system's.
fn client(peer: &PeerSpec) -> Result<reqwest::Client, Fault> {
    let tls = crate::probe::tls::peer_client_config(peer.ca_file.as_deref())
        .map_err(|e| Fault::Tls(e.to_string()))?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| Fault::Connect(e.to_string()))
}

/// A TLS failure anywhere in the error's causes is `tls`; the rest is `connect`.
fn classify(e: &reqwest::Error) -> Fault {
    let mut text = e.to_string();
    let mut tls = false;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        tls |= c.downcast_ref::<rustls::Error>().is_some()
            || c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    // The connector may hand the handshake's error on as text only.
    let lower = text.to_ascii_lowercase();
    tls |= ["certificate", "handshake", "tls"]
        .iter()
        .any(|w| lower.contains(w));
    if tls {
        Fault::Tls(text)
    } else {
        Fault::Connect(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_a_line_without_end_is_bounded() {
        let mut pending = b"{\"a\":1}\n\n{\"b\"".to_vec();
        let mut lines = Vec::new();
        take_lines(&mut pending, &mut lines).expect("fine");
        assert_eq!(lines, vec![b"{\"a\":1}".to_vec()]);
        assert_eq!(pending, b"{\"b\"");
        let mut endless = vec![b'x'; MAX_LINE + 1];
        assert!(matches!(
            take_lines(&mut endless, &mut lines),
            Err(Fault::Line(LineError::Oversized))
        ));
    }

    #[test]
    fn a_zstd_bomb_is_refused_without_inflating_it() {
        // 100 MB of spaces with no newline compresses to a few kB.
        use std::io::Read;
        let bomb = zstd::encode_all(std::io::repeat(b' ').take(100 << 20), 3).expect("compress");
        assert!(bomb.len() < 64 << 10);
        let mut d = zstd::stream::raw::Decoder::new().expect("decoder");
        let (mut pending, mut lines) = (Vec::new(), Vec::new());
        let e = inflate(&mut d, &bomb, &mut pending, &mut lines).expect_err("refused");
        assert!(matches!(e, Fault::Line(LineError::Oversized)), "{e}");
        assert!(pending.len() <= MAX_LINE + 64 * 1024);
    }
}
